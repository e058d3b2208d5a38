"""PortBook: which TCP port each model's server gets, kept across restarts where it can be.

The policy is pure apart from one injectable bind probe (`port_is_free`). Stdlib only; imports
nothing from the project.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

log = logging.getLogger("swapgate.ports")

MAX_PORT = 65535


def port_is_free(port: int) -> bool:
    """True if a server could bind `port` on every IPv4 address now.

    The probe sets SO_REUSEADDR, as servers do (llama-server, uvicorn, aiohttp), so sockets
    in TIME_WAIT from the previous run do not count as busy; a live listener still does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # a probe: closed at once, never listens
        except OSError:
            return False
    return True


class PortBook:
    """The ports held by the models of one pool, and the port each model had last."""

    def __init__(self, probe: Callable[[int], bool] = port_is_free) -> None:
        self._probe = probe
        self._held: dict[str, int] = {}
        self._last: dict[str, int] = {}  # remembered after release: the next start's first pick

    def allocate(self, model: str, preferred: int) -> int:
        """A free port for `model`, now held by it.

        Its previous port if it had one and that is free, else `preferred` if free, else the
        next free port above `preferred`; never a port another model of this book holds. A
        model that already holds a port gives it up first (a restart without a release).
        Raises OSError(EADDRINUSE) when no port up to 65535 is free.
        """
        self._held.pop(model, None)
        holders = {port: other for other, port in self._held.items()}
        first = self._last.get(model, preferred)
        for port in _candidates(first, preferred):
            if port not in holders and self._probe(port):
                if port != first:
                    _log_move(model, first, port, holders.get(first))
                self._held[model] = self._last[model] = port
                return port
        msg = f"{model}: no free TCP port from {preferred} to {MAX_PORT}"
        raise OSError(errno.EADDRINUSE, msg)

    def release(self, model: str) -> None:
        """`model` no longer holds its port; it stays its first pick for the next allocate()."""
        self._held.pop(model, None)

    def held(self) -> Mapping[str, int]:
        """model -> port for every model that holds one now (a read-only snapshot)."""
        return MappingProxyType(dict(self._held))


def _candidates(first: int, preferred: int) -> Iterator[int]:
    """`first`, then `preferred` and every port above it, each once."""
    yield first
    for port in range(preferred, MAX_PORT + 1):
        if port != first:
            yield port


def _log_move(model: str, wanted: int, got: int, holder: str | None) -> None:
    if holder is None:
        log.info("%s: port %d busy, using %d", model, wanted, got)
    else:
        log.info("%s: port %d held by %s, using %d", model, wanted, holder, got)
