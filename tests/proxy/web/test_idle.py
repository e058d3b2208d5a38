"""swapgate.proxy.web.idle: judging idle keep-alives from the kernel's view of each socket,
and ending only those, on real loopback sockets of this process."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from swapgate.proxy.web.idle import TcpView, descriptors, end_idle, remote, tcp_view
from tests.support.procs import LOCALHOST

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="Linux TCP_INFO")


def test_addresses_are_normalised() -> None:
    assert remote(("127.0.0.1", 80)) == ("127.0.0.1", 80)
    assert remote(("::ffff:127.0.0.1", 80)) == ("127.0.0.1", 80)
    assert remote(("::1", 80, 0, 0)) == ("::1", 80)
    assert remote(None) is None
    assert remote(("127.0.0.1",)) is None
    assert remote(("127.0.0.1", "80")) == ("127.0.0.1", 80)  # as Granian gives it
    assert remote(("127.0.0.1", "x")) is None


def test_idle_means_answered_and_silent_since() -> None:
    assert (
        TcpView(True, answered_bytes=10, sent_ms_ago=5000, received_ms_ago=6000).idle_ms() == 5000
    )
    assert TcpView(True, answered_bytes=0, sent_ms_ago=5000, received_ms_ago=5000).idle_ms() is None
    # the client has sent again since the answer: a request is on its way
    assert TcpView(True, answered_bytes=10, sent_ms_ago=5000, received_ms_ago=100).idle_ms() is None
    # already closing
    assert (
        TcpView(False, answered_bytes=10, sent_ms_ago=5000, received_ms_ago=6000).idle_ms() is None
    )


@contextmanager
def pairs(count: int) -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    """`count` connected (client, accepted) pairs on loopback."""
    made: list[tuple[socket.socket, socket.socket]] = []
    with socket.socket() as server:
        server.bind((LOCALHOST, 0))
        server.listen()
        try:
            for _ in range(count):
                client = socket.create_connection(server.getsockname())
                accepted, _ = server.accept()
                made.append((client, accepted))
            yield made
        finally:
            for client, accepted in made:
                client.close()
                accepted.close()


def answer(client: socket.socket, accepted: socket.socket) -> None:
    """One request and its answer on a pair."""
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    accepted.recv(100)
    accepted.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    client.recv(100)


def inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def ended(client: socket.socket) -> bool:
    """Whether the server side has hung up (EOF within 0.2 s)."""
    client.settimeout(0.2)
    try:
        return client.recv(100) == b""
    except TimeoutError:
        return False


def test_the_kernel_view_follows_the_exchange() -> None:
    with pairs(1) as [(client, accepted)]:
        fresh = tcp_view(accepted)
        assert fresh is not None
        assert fresh.established
        assert fresh.answered_bytes == 0
        assert fresh.idle_ms() is None
        answer(client, accepted)
        time.sleep(0.3)
        view = tcp_view(accepted)
        assert view is not None
        assert view.answered_bytes > 0
        idle = view.idle_ms()
        assert idle is not None
        assert idle >= 250


def test_descriptors_are_found_by_inode() -> None:
    with pairs(2) as made:
        wanted = {inode(accepted): accepted.fileno() for _, accepted in made}
        assert descriptors(set(wanted) | {1}) == wanted


def test_only_idle_keep_alives_are_ended_longest_idle_first() -> None:
    with pairs(6) as made:
        (old_c, old_a), (new_c, new_a), (busy_c, busy_a), (again_c, again_a) = made[:4]
        (never_c, _never_a), (spare_c, spare_a) = made[4:]
        answer(old_c, old_a)
        answer(busy_c, busy_a)
        answer(again_c, again_a)
        answer(spare_c, spare_a)
        time.sleep(0.4)
        answer(new_c, new_a)
        time.sleep(0.3)
        again_c.sendall(b"GE")  # the next request has begun
        time.sleep(0.05)
        inodes = [inode(accepted) for _, accepted in made]
        busy = {remote(busy_a.getpeername())}
        assert None not in busy
        count = end_idle(inodes, busy, count=2, min_idle_ms=200)  # type: ignore[arg-type]
        assert count == 2
        # old and spare were idle longest (0.7 s); new (0.3 s) came third
        assert [ended(c) for c in (old_c, spare_c, new_c)] == [True, True, False]
        # in flight, mid-request and never answered: never ended, whatever the count
        assert end_idle(inodes, busy, count=10, min_idle_ms=200) == 1  # type: ignore[arg-type]
        assert ended(new_c)
        assert not any(ended(c) for c in (busy_c, again_c, never_c))


def test_nothing_is_ended_below_the_minimum_idle_time() -> None:
    with pairs(1) as [(client, accepted)]:
        answer(client, accepted)
        assert end_idle([inode(accepted)], set(), count=1, min_idle_ms=60_000) == 0
        assert not ended(client)
