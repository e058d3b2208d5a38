"""Near the connection cap, idle keep-alives give way to new clients.

Granian serves at most `connections.limit` connections and cannot close idle keep-alive
ones to make room: past the cap a new client waits in the kernel's backlog until some
connection closes. swapgate counts its client connections once a second (the listening
port's established sockets in /proc/net/tcp and tcp6, read in a worker thread). While they
are at 90 % of the cap or more, it ends the connections that have been idle longest (no
request in flight, the last answer at least a second ago; see idle.py) until 80 % are
left, and every response says `Connection: close`, so a client that has its answer hangs
up instead of keeping an idle place. Without /proc (not Linux) it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from swapgate.proxy.web.idle import ActivityMap, close_idle, connections

log = logging.getLogger("swapgate.connections")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

NEAR_SHARE = 0.9  # of the cap: from here on, responses close their connection
RELIEVED_SHARE = 0.8  # of the cap: idle connections are ended down to this many
MIN_IDLE_S = 1.0  # a connection idle for less may be about to send its next request
SAMPLE_EVERY_S = 1.0
_CLOSE = (b"connection", b"close")


class ConnectionPressure:
    """Whether client connections are near the cap, sampled in the background."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.limit = limit
        self.high = max(1, int(limit * NEAR_SHARE))
        self.relieved = int(limit * RELIEVED_SHARE)
        self.near = False
        self.count: int | None = None
        self.activity = ActivityMap()
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
            read_at = time.monotonic()
            live = await asyncio.to_thread(connections, self.port)
            if live is None:
                log.debug("no /proc/net/tcp: connections are not counted")
                return
            count = len(live)
            self.activity.forget_except({c.remote for c in live}, read_at)
            near = count >= self.high
            if near != self.near:
                log.info(
                    "%d of at most %d client connections: %s",
                    count,
                    self.limit,
                    "idle ones are closed, answers close theirs" if near else "keep-alive again",
                )
            self.count, self.near = count, near
            if near:
                idle = dict(self.activity.idle_since)  # the thread reads a copy
                ended = await asyncio.to_thread(
                    close_idle, self.port, idle, count - self.relieved, MIN_IDLE_S
                )
                if ended:
                    log.info("closed %d idle client connections to make room", ended)
            await asyncio.sleep(SAMPLE_EVERY_S)


class ConnectionRelief:
    """ASGI wrapper: notes which client connections have requests in flight, and while
    `pressure.near` gives every response `Connection: close`."""

    __slots__ = ("app", "pressure")

    def __init__(self, app: ASGIApp, pressure: ConnectionPressure) -> None:
        self.app = app
        self.pressure = pressure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        remote = (str(client[0]), int(client[1])) if client else None
        activity = self.pressure.activity
        if remote is not None:
            activity.begin(remote)
        try:
            if not self.pressure.near:
                await self.app(scope, receive, send)
            else:
                await self.app(scope, receive, _closing(send))
        finally:
            if remote is not None:
                activity.end(remote)


def _closing(send: Send) -> Send:
    """`send`, with `Connection: close` on the response head."""

    def closing(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
            message["headers"] = [*headers, _CLOSE]
        return send(message)

    return closing
