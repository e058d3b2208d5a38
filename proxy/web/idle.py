"""Find this process's idle client connections and close them, to make room near the cap.

Granian owns the client sockets, but they are file descriptors of this process: the
established connections on the listening port come from /proc/net/tcp (remote address and
socket inode), /proc/self/fd maps an inode to its descriptor, and `shutdown()` on a
duplicate of that descriptor ends the connection, which Granian then sees as closed by
the client and cleans up. Which connections are idle is what the request path knows: a
connection with no request in flight whose last response ended a while ago (ActivityMap).
Everything here but ActivityMap runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

Remote = tuple[str, int]
_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_ESTABLISHED = "01"
_SOCKET_LINK = "socket:["


@dataclass(frozen=True, slots=True)
class Connection:
    """One established connection to the listening port."""

    remote: Remote
    inode: int


def connections(port: int, tables: Iterable[str] = _TABLES) -> list[Connection] | None:
    """The established connections whose local port is `port`; None without /proc."""
    wanted = f":{port:04X}"
    found: list[Connection] = []
    readable = False
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _ESTABLISHED and fields[1].endswith(wanted):
                remote = _address(fields[2])
                if remote is not None:
                    found.append(Connection(remote, int(fields[9])))
    return found if readable else None


def _address(text: str) -> Remote | None:
    """`0100007F:D431` (or its 32-digit IPv6 form) as ("127.0.0.1", 54321)."""
    host, _, port = text.partition(":")
    try:
        raw = bytes.fromhex(host)
        # /proc prints each 32-bit word in host byte order (little-endian here).
        packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        address = ipaddress.ip_address(packed)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return str(address), int(port, 16)
    except ValueError:
        return None


def descriptors(inodes: set[int]) -> dict[int, int]:
    """inode -> file descriptor, for the sockets of this process among `inodes`."""
    found: dict[int, int] = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError, ValueError):
            link = os.readlink(f"/proc/self/fd/{name}")
            if link.startswith(_SOCKET_LINK):
                inode = int(link[len(_SOCKET_LINK) : -1])
                if inode in inodes:
                    found[inode] = int(name)
    return found


def close_idle(port: int, idle_since: dict[Remote, float], count: int, min_idle_s: float) -> int:
    """End up to `count` connections idle for `min_idle_s` or more, the longest idle first;
    returns how many were ended. `idle_since` is a copy of ActivityMap.idle_since."""
    now = time.monotonic()
    live = connections(port) or []
    idle = [
        (idle_since[c.remote], c) for c in live if now - idle_since.get(c.remote, now) >= min_idle_s
    ]
    idle.sort(key=lambda pair: pair[0])
    chosen = [c for _, c in idle[:count]]
    fds = descriptors({c.inode for c in chosen})
    ended = 0
    for connection in chosen:
        fd = fds.get(connection.inode)
        if fd is None:
            continue
        with contextlib.suppress(OSError):
            with socket.socket(fileno=os.dup(fd)) as duplicate:
                duplicate.shutdown(socket.SHUT_RDWR)
            ended += 1
    return ended


class ActivityMap:
    """Per client address: requests in flight, and since when it has had none."""

    __slots__ = ("busy", "idle_since")

    def __init__(self) -> None:
        self.busy: dict[Remote, int] = {}
        self.idle_since: dict[Remote, float] = {}

    def begin(self, remote: Remote) -> None:
        self.busy[remote] = self.busy.get(remote, 0) + 1
        self.idle_since.pop(remote, None)

    def end(self, remote: Remote) -> None:
        left = self.busy.get(remote, 1) - 1
        if left > 0:
            self.busy[remote] = left
        else:
            self.busy.pop(remote, None)
            self.idle_since[remote] = time.monotonic()

    def forget_except(self, live: set[Remote], read_at: float) -> None:
        """Drop what is known of connections that had closed when `live` was read (at
        monotonic time `read_at`); a connection idle only since then may be newer."""
        gone = [r for r, since in self.idle_since.items() if r not in live and since < read_at]
        for remote in gone:
            del self.idle_since[remote]
