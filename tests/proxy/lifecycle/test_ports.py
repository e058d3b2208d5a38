"""PortBook's policy against a fake probe, and port_is_free against real sockets."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from swapgate.proxy.lifecycle.ports import MAX_PORT, PortBook, port_is_free
from tests.support.procs import LOCALHOST, wait_until


class FakePorts:
    """A probe over a set of busy ports that records every port it was asked about."""

    def __init__(self, *busy: int) -> None:
        self.busy = set(busy)
        self.asked: list[int] = []

    def __call__(self, port: int) -> bool:
        self.asked.append(port)
        return port not in self.busy


# ---- policy (pure) ------------------------------------------------------------------------------


def test_preferred_port_when_free() -> None:
    """A free preferred port is taken as it is, after one probe, and shows as held."""
    probe = FakePorts()
    book = PortBook(probe)
    assert book.allocate("alpha", 5800) == 5800
    assert probe.asked == [5800]
    assert book.held() == {"alpha": 5800}


def test_busy_preferred_port_moves_up_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    """A busy preferred port gives the next free one above it, with one info line saying so."""
    book = PortBook(FakePorts(5800, 5801, 5802))
    with caplog.at_level(logging.INFO, logger="swapgate.ports"):
        assert book.allocate("alpha", 5800) == 5803
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("swapgate.ports", logging.INFO, "alpha: port 5800 busy, using 5803")
    ]


def test_no_log_line_when_nothing_moves(caplog: pytest.LogCaptureFixture) -> None:
    """Getting the preferred (or the previous) port is not a move and logs nothing."""
    book = PortBook(FakePorts())
    with caplog.at_level(logging.DEBUG, logger="swapgate.ports"):
        book.allocate("alpha", 5800)
        book.release("alpha")
        book.allocate("alpha", 5800)
    assert caplog.records == []


def test_port_sticks_to_the_model_across_release_and_allocate() -> None:
    """A restarted model gets its previous (moved) port back, even once the preferred is free."""
    probe = FakePorts(5800)
    book = PortBook(probe)
    assert book.allocate("alpha", 5800) == 5801
    book.release("alpha")
    assert book.held() == {}
    probe.busy.clear()
    probe.asked.clear()
    assert book.allocate("alpha", 5800) == 5801
    assert probe.asked == [5801]


def test_busy_previous_port_falls_back_to_preferred(caplog: pytest.LogCaptureFixture) -> None:
    """When the previous port is busy now, the preferred one is tried next, and the move logged."""
    probe = FakePorts(5800)
    book = PortBook(probe)
    assert book.allocate("alpha", 5800) == 5801
    book.release("alpha")
    probe.busy = {5801}
    with caplog.at_level(logging.INFO, logger="swapgate.ports"):
        assert book.allocate("alpha", 5800) == 5800
    assert caplog.messages == ["alpha: port 5801 busy, using 5800"]


def test_ports_held_by_other_models_are_skipped_without_probing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A port another model holds is never given out, even when the probe would call it free."""
    probe = FakePorts()
    book = PortBook(probe)
    assert book.allocate("alpha", 5800) == 5800
    probe.asked.clear()
    with caplog.at_level(logging.INFO, logger="swapgate.ports"):
        assert book.allocate("beta", 5800) == 5801
    assert probe.asked == [5801]
    assert caplog.messages == ["beta: port 5800 held by alpha, using 5801"]
    assert book.held() == {"alpha": 5800, "beta": 5801}


def test_previous_port_taken_by_another_model_meanwhile() -> None:
    """A model's remembered port that another model took while it was stopped is not shared."""
    book = PortBook(FakePorts())
    assert book.allocate("alpha", 5800) == 5800
    book.release("alpha")
    assert book.allocate("beta", 5800) == 5800
    assert book.allocate("alpha", 5800) == 5801
    assert book.held() == {"alpha": 5801, "beta": 5800}


def test_allocating_again_without_release_reuses_the_models_own_port() -> None:
    """A model that still holds a port is not blocked by itself: it gets that port again."""
    book = PortBook(FakePorts())
    assert book.allocate("alpha", 5800) == 5800
    assert book.allocate("alpha", 5800) == 5800
    assert book.held() == {"alpha": 5800}


def test_release_of_a_model_without_a_port_is_a_no_op() -> None:
    """release() is idempotent and accepts a model that never held a port."""
    book = PortBook(FakePorts())
    book.release("ghost")
    book.allocate("alpha", 5800)
    book.release("alpha")
    book.release("alpha")
    assert book.held() == {}


def test_held_is_a_read_only_snapshot() -> None:
    """held() cannot be written through and does not change under a later allocate()."""
    book = PortBook(FakePorts())
    book.allocate("alpha", 5800)
    snapshot = book.held()
    book.allocate("beta", 5800)
    assert snapshot == {"alpha": 5800}
    with pytest.raises(TypeError):
        snapshot["beta"] = 1  # type: ignore[index]


def test_exhausted_range_raises_eaddrinuse() -> None:
    """When nothing up to 65535 is free, allocate() raises OSError(EADDRINUSE) and holds nothing."""
    book = PortBook(lambda port: False)
    with pytest.raises(OSError, match="alpha: no free TCP port from 65530 to 65535") as info:
        book.allocate("alpha", 65530)
    assert info.value.errno == errno.EADDRINUSE
    assert book.held() == {}


def test_top_port_is_usable() -> None:
    """65535 itself can be allocated; the search stops there."""
    probe = FakePorts(MAX_PORT - 1)
    assert PortBook(probe).allocate("alpha", MAX_PORT - 1) == MAX_PORT
    assert probe.asked == [MAX_PORT - 1, MAX_PORT]


# ---- the real probe -----------------------------------------------------------------------------


def _tcp_states(port: int) -> set[str]:
    """The hex TCP states (/proc/net/tcp `st`) of every IPv4 socket whose local port is `port`."""
    states = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rpartition(":")[2], 16) == port:
            states.add(fields[3])
    return states


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 with SO_REUSEADDR, as servers open theirs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOCALHOST, 0))
        sock.listen()
        yield sock
    finally:
        sock.close()


def test_port_with_a_live_listener_is_busy(listener: socket.socket) -> None:
    """A port some socket listens on is reported busy."""
    assert not port_is_free(listener.getsockname()[1])


def test_port_in_time_wait_is_free(listener: socket.socket) -> None:
    """A port whose only socket is in TIME_WAIT (the server closed first) is reported free."""
    port = listener.getsockname()[1]
    with socket.create_connection((LOCALHOST, port), timeout=5) as client:
        served, _ = listener.accept()
        served.close()  # the server side closes first, so it is the side that enters TIME_WAIT
        assert client.recv(1) == b""  # the server's FIN arrived
    listener.close()
    wait_until(lambda: _tcp_states(port) == {"06"}, timeout=5, message="only TIME_WAIT on port")
    assert port_is_free(port)


def test_real_probe_moves_a_model_off_a_listened_port(listener: socket.socket) -> None:
    """With the default probe, a model whose preferred port has a listener gets a higher one."""
    port = listener.getsockname()[1]
    book = PortBook()
    got = book.allocate("alpha", port)
    assert got > port
    assert port_is_free(got)
