"""ListenerGuard: "healthy" counts only if the server that answered is the model's own.

Before the spawn it notes who already listens on the port the upstream URL names; after the
health check passes, a listener that was there before and is not in the child's process group
means another process answered in the model's place. A listener that appeared after the spawn
outside the group (docker-proxy for `docker run -p`) is the model's. Stdlib and listener.py only.
"""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit

from swapgate.proxy.lifecycle.listener import listener_inodes, listener_owned_by_group

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def local_port(url: str) -> int | None:
    """The local port an upstream URL names (None for a remote host or a bad URL)."""
    parts = urlsplit(url)
    if parts.hostname not in _LOCAL_HOSTS:
        return None
    try:
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


class ListenerGuard:
    """One start's before/after view of the listeners on the model's port."""

    __slots__ = ("_before", "_port")

    def __init__(self, url: str) -> None:
        self._port = local_port(url)
        # Reading the socket tables costs milliseconds (more with many sockets), straight
        # onto every start: read them only when something accepts a connection on the port.
        port = self._port
        self._before = _listeners(port) if port is not None and _maybe_listening(port) else set()

    def foreign_port(self, pgid: int) -> int | None:
        """The port, if a listener that predates the spawn answers instead of group `pgid`."""
        port = self._port
        if port is None or not self._before:
            return None
        if listener_owned_by_group(port, pgid) is not False:
            return None
        return port if self._before & _listeners(port) else None


def _maybe_listening(port: int) -> bool:
    """True unless the port can be bound on loopback (IPv4 and IPv6), which no listener there
    would allow. A bind, not a connect: the server on the port sees nothing of the check.
    Any error other than "in use" counts as "something may be there": then the tables are
    read."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
                sock.bind((host, port))
        except OSError as exc:
            if exc.errno not in _NO_SUCH_FAMILY:
                return True
    return False


_NO_SUCH_FAMILY = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})


def _listeners(port: int | None) -> set[int]:
    if port is None:
        return set()
    try:
        return listener_inodes(port)
    except OSError:  # no /proc/net: ownership cannot be told, so it is not checked
        return set()
