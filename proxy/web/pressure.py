"""Near the connection cap, answer with `Connection: close` so idle keep-alives give way.

Granian serves at most `connections.limit` connections and cannot close idle keep-alive
ones to make room: past the cap a new client waits in the kernel's backlog until some
connection closes. swapgate counts its client connections once a second (the listening
port's established sockets in /proc/net/tcp and tcp6, read in a worker thread), and while
they are at 90 % of the cap or more every response says `Connection: close`: a client that
has its answer hangs up instead of keeping an idle connection, so the connections that stay
are the ones in use, and new clients get the freed places. Idle connections that sent no
request meanwhile still close after `headerTimeout`. Without /proc (not Linux) it does
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

log = logging.getLogger("swapgate.connections")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

NEAR_SHARE = 0.9  # of the cap: from here on, responses close their connection
SAMPLE_EVERY_S = 1.0
_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_ESTABLISHED = "01"
_CLOSE = (b"connection", b"close")


def established(port: int, tables: tuple[str, ...] = _TABLES) -> int | None:
    """Established TCP connections whose local port is `port`; None without /proc."""
    wanted = f":{port:04X}"
    count = 0
    found = False
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split(None, 4)
            if len(fields) > 3 and fields[3] == _ESTABLISHED and fields[1].endswith(wanted):
                count += 1
    return count if found else None


class ConnectionPressure:
    """Whether client connections are near the cap, sampled in the background."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.limit = limit
        self.high = max(1, int(limit * NEAR_SHARE))
        self.near = False
        self.count: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample(self) -> None:
        while True:
            count = await asyncio.to_thread(established, self.port)
            if count is None:
                log.debug("no /proc/net/tcp: connections are not counted")
                return
            near = count >= self.high
            if near != self.near:
                log.info(
                    "%d of at most %d client connections: %s",
                    count,
                    self.limit,
                    "answers now close their connections" if near else "keep-alive again",
                )
            self.count, self.near = count, near
            await asyncio.sleep(SAMPLE_EVERY_S)


class ConnectionRelief:
    """ASGI wrapper: while `pressure.near`, every response carries `Connection: close`."""

    __slots__ = ("app", "pressure")

    def __init__(self, app: ASGIApp, pressure: ConnectionPressure) -> None:
        self.app = app
        self.pressure = pressure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.pressure.near:
            await self.app(scope, receive, send)
            return

        def closing(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                message["headers"] = [*headers, _CLOSE]
            return send(message)

        await self.app(scope, receive, closing)
