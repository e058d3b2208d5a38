"""listener.py against real sockets and real processes in their own sessions."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from swapgate.proxy.lifecycle.listener import (
    group_socket_inodes,
    listener_inodes,
    listener_owned_by_group,
)
from tests.support.procs import LOCALHOST, children_of, free_port, kill_group, spawn

# Listens on a free port chosen by the kernel, prints it, then waits to be killed.
LISTEN = textwrap.dedent(
    """
    import socket, sys, time
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    print(sock.getsockname()[1], flush=True)
    time.sleep(60)
    """
)


def _inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


@contextlib.contextmanager
def running_listener(argv: list[str]) -> Iterator[tuple[int, int]]:
    """Run `argv`, which prints the port it listens on: (its pgid, that port); killed after."""
    proc = spawn(argv, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        yield proc.pid, int(proc.stdout.readline())
    finally:
        kill_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session that holds no socket."""
    proc = spawn(["sleep", "60"])
    try:
        yield proc
    finally:
        kill_group(proc)


@pytest.fixture
def own_listener() -> Iterator[socket.socket]:
    """A socket listening on 127.0.0.1, held by the test process itself."""
    sock = socket.socket()
    try:
        sock.bind((LOCALHOST, 0))
        sock.listen()
        yield sock
    finally:
        sock.close()


def test_listener_inodes_finds_the_listening_socket(own_listener: socket.socket) -> None:
    """The inode of a socket listening on the port is in listener_inodes(port)."""
    assert _inode(own_listener) in listener_inodes(own_listener.getsockname()[1])


def test_listener_inodes_sees_ipv6_listeners() -> None:
    """Listeners on IPv6 addresses are read from /proc/net/tcp6."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
        sock.listen()
        assert listener_inodes(sock.getsockname()[1]) == {_inode(sock)}


def test_connected_sockets_are_not_listeners(own_listener: socket.socket) -> None:
    """Only LISTEN sockets count: an accepted connection on the same port does not."""
    port = own_listener.getsockname()[1]
    with socket.create_connection((LOCALHOST, port), timeout=5):
        served, _ = own_listener.accept()
        with served:
            assert listener_inodes(port) == {_inode(own_listener)}


@pytest.mark.integration
def test_child_group_owns_its_listener() -> None:
    """A child in its own session listening on the port: True for its process group."""
    with running_listener([sys.executable, "-c", LISTEN]) as (pgid, port):
        assert listener_inodes(port) <= group_socket_inodes(pgid)
        assert listener_owned_by_group(port, pgid) is True


@pytest.mark.integration
def test_listener_in_a_grandchild_counts_for_the_group() -> None:
    """A listener opened by a grandchild (an `sh -c` wrapper's child) belongs to the group too."""
    wrapped = f"{sys.executable} -c '{LISTEN}'; true"  # `; true` keeps sh as the parent
    with running_listener(["sh", "-c", wrapped]) as (pgid, port):
        assert children_of(pgid)  # the listener is not the leader's own socket
        assert listener_owned_by_group(port, pgid) is True


@pytest.mark.integration
def test_foreign_listener_is_not_owned_by_the_child_group(
    own_listener: socket.socket, sleeper: subprocess.Popen[bytes]
) -> None:
    """A listener of another process (the test's own) on the port: False for the child's group."""
    port = own_listener.getsockname()[1]
    assert _inode(own_listener) not in group_socket_inodes(sleeper.pid)
    assert listener_owned_by_group(port, sleeper.pid) is False


@pytest.mark.integration
def test_no_listener_cannot_be_told(sleeper: subprocess.Popen[bytes]) -> None:
    """Nothing listening on the port: None (the caller accepts)."""
    port = free_port()
    assert listener_inodes(port) == set()
    assert listener_owned_by_group(port, sleeper.pid) is None


@pytest.mark.integration
def test_group_without_processes_holds_no_sockets(sleeper: subprocess.Popen[bytes]) -> None:
    """A process group that no longer exists has no socket inodes."""
    kill_group(sleeper)
    assert group_socket_inodes(sleeper.pid) == set()
