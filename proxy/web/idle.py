"""Find this process's idle client connections and end them, to make room near the cap.

Granian owns the client sockets and tells the app nothing about idle ones, but they are
file descriptors of this process: /proc/self/fd maps a socket inode (from /proc/net/tcp)
to its descriptor, and a duplicate of that descriptor gives the kernel's view of the
connection. Idleness is judged per socket from that view (TCP_INFO), never from client
addresses, which are reused: a connection is idle when it has been sent an answer, the
client has sent nothing since, and nothing has moved either way for a while. A socket
that never got an answer (a slow or new client) is never ended here; `headerTimeout`
bounds those. Answers still being written are protected by the request path, which says
which client addresses have a request in flight. `shutdown()` on the duplicate ends the
connection with a FIN; Granian sees the client gone and drops it. Runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

Remote = tuple[str, int]
_SOCKET_LINK = "socket:["
_TCP_INFO_SIZE = 136  # through tcpi_bytes_received (Linux 4.2 and later)
_TCP_STATE_ESTABLISHED = 1  # tcpi_state, the first byte
_TIMES = struct.Struct("=I4xI")  # tcpi_last_data_sent, tcpi_last_data_recv (ms ago)
_TIMES_AT = 44
_BYTES = struct.Struct("=Q")  # tcpi_bytes_acked: answer bytes the client has received
_BYTES_AT = 120
_MAPPED = "::ffff:"


def remote(address: object) -> Remote | None:
    """A client address as (host, port), IPv4-mapped IPv6 written as IPv4; None if odd.
    Granian gives the port as a string, the socket module as an int."""
    if not isinstance(address, tuple) or len(address) < 2:
        return None
    host, port = address[0], address[1]
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(host, str) or not isinstance(port, int):
        return None
    return host.removeprefix(_MAPPED), port


@dataclass(frozen=True, slots=True)
class TcpView:
    """What the kernel says of one connection."""

    established: bool  # neither side has begun to close it
    answered_bytes: int  # data this side sent that the peer acknowledged
    sent_ms_ago: int  # since this side last sent data
    received_ms_ago: int  # since the peer last sent data

    def idle_ms(self) -> int | None:
        """How long this connection has been an idle keep-alive, or None if it is not one:
        it must be open, and answered, with nothing from the client since the last answer."""
        if (
            not self.established
            or self.answered_bytes == 0
            or self.received_ms_ago < self.sent_ms_ago
        ):
            return None
        return self.sent_ms_ago


def tcp_view(sock: socket.socket) -> TcpView | None:
    """The kernel's view of a TCP socket; None where TCP_INFO is missing or too short."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, AttributeError):
        return None
    if len(raw) < _TCP_INFO_SIZE:
        return None
    sent, received = _TIMES.unpack_from(raw, _TIMES_AT)
    (answered,) = _BYTES.unpack_from(raw, _BYTES_AT)
    return TcpView(raw[0] == _TCP_STATE_ESTABLISHED, answered, sent, received)


def descriptors(inodes: set[int]) -> dict[int, int]:
    """inode -> file descriptor, for the sockets of this process among `inodes`."""
    found: dict[int, int] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            link = os.readlink(f"/proc/self/fd/{name}")
            if link.startswith(_SOCKET_LINK):
                inode = int(link[len(_SOCKET_LINK) : -1])
                if inode in inodes:
                    found[inode] = int(name)
    return found


def end_idle(inodes: Iterable[int], busy: set[Remote], count: int, min_idle_ms: int) -> int:
    """End up to `count` of the sockets `inodes` that are idle keep-alives for
    `min_idle_ms` or more and whose client has no request in flight (`busy`), the longest
    idle first. Returns how many were ended."""
    if count <= 0:
        return 0
    idle: list[tuple[int, socket.socket]] = []
    try:
        for inode, fd in descriptors(set(inodes)).items():
            duplicate = _duplicate(fd, inode)
            if duplicate is None:
                continue
            idle_ms = _idle_ms(duplicate, busy)
            if idle_ms is None or idle_ms < min_idle_ms:
                duplicate.close()
            else:
                idle.append((idle_ms, duplicate))
        idle.sort(key=lambda pair: pair[0], reverse=True)
        ended = 0
        for _, duplicate in idle[:count]:
            with contextlib.suppress(OSError):
                duplicate.shutdown(socket.SHUT_RDWR)
                ended += 1
        return ended
    finally:
        for _, duplicate in idle:
            duplicate.close()


def _duplicate(fd: int, inode: int) -> socket.socket | None:
    """A duplicate of descriptor `fd` if it is still socket `inode`: Granian may have closed
    the descriptor and reused its number since /proc/self/fd was read."""
    try:
        copy = os.dup(fd)
    except OSError:
        return None
    try:
        if os.fstat(copy).st_ino != inode:
            os.close(copy)
            return None
        return socket.socket(fileno=copy)
    except OSError:
        os.close(copy)
        return None


def _idle_ms(sock: socket.socket, busy: set[Remote]) -> int | None:
    view = tcp_view(sock)
    if view is None:
        return None
    idle_ms = view.idle_ms()
    if idle_ms is None:
        return None
    try:
        peer = remote(sock.getpeername())
    except OSError:
        return None
    return None if peer is None or peer in busy else idle_ms
