"""ListenerGuard: "healthy" counts only if the server that answered is the model's own.

Before the spawn it notes who already listens on the port the upstream URL names; after the
health check passes, a listener that was there before and is not in the child's process group
means another process answered in the model's place. A listener that appeared after the spawn
outside the group (docker-proxy for `docker run -p`) is the model's. Stdlib and listener.py only.
"""

from __future__ import annotations

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
        self._before = _listeners(self._port)

    def foreign_port(self, pgid: int) -> int | None:
        """The port, if a listener that predates the spawn answers instead of group `pgid`."""
        port = self._port
        if port is None or not self._before:
            return None
        if listener_owned_by_group(port, pgid) is not False:
            return None
        return port if self._before & _listeners(port) else None


def _listeners(port: int | None) -> set[int]:
    if port is None:
        return set()
    try:
        return listener_inodes(port)
    except OSError:  # no /proc/net: ownership cannot be told, so it is not checked
        return set()
