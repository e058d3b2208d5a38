"""Near the connection cap, make room: end idle keep-alives and answer `Connection: close`.

Granian serves at most `connections.limit` connections and cannot close idle keep-alive
ones to make room: past the cap a new client waits in the kernel's backlog until some
connection closes. swapgate counts its client connections once a second (the listening
port's established sockets in /proc/net/tcp and tcp6, read in a worker thread). While they
are at 90 % of the cap or more it ends the keep-alives idle longest, down to 80 % (see
idle.py), and every response says `Connection: close`, so a client that has its answer
hangs up instead of holding a place. Connections that never sent a whole request still
close after `headerTimeout`. Without /proc (not Linux) it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from swapgate.proxy.web.idle import end_idle, remote

log = logging.getLogger("swapgate.connections")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

NEAR_SHARE = 0.9  # of the cap: from here on, make room
ROOM_SHARE = 0.8  # of the cap: end idle keep-alives until this many connections are left
MIN_IDLE_MS = 1000  # a keep-alive idle for less may be about to send its next request
SAMPLE_EVERY_S = 1.0
_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_ESTABLISHED = "01"
_CLOSE = (b"connection", b"close")


def established(port: int, tables: tuple[str, ...] = _TABLES) -> list[int] | None:
    """The socket inodes of established TCP connections whose local port is `port`; None
    without /proc."""
    wanted = f":{port:04X}"
    inodes: list[int] = []
    found = False
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split(None, 10)
            if len(fields) > 9 and fields[3] == _ESTABLISHED and fields[1].endswith(wanted):
                inodes.append(int(fields[9]))
    return inodes if found else None


class ConnectionPressure:
    """Whether client connections are near the cap, sampled in the background, and making
    room while they are. `busy` counts requests in flight per client address (kept by
    ConnectionRelief): a connection whose answer is still being written is never ended."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.limit = limit
        self.high = max(1, int(limit * NEAR_SHARE))
        self.room = int(limit * ROOM_SHARE)
        self.near = False
        self.busy: dict[tuple[object, ...], int] = {}
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
            inodes = await asyncio.to_thread(established, self.port)
            if inodes is None:
                log.debug("no /proc/net/tcp: connections are not counted")
                return
            count = len(inodes)
            near = count >= self.high
            if near != self.near:
                log.info(
                    "%d of at most %d client connections: %s",
                    count,
                    self.limit,
                    "ending idle ones and closing after each answer" if near else "all kept",
                )
            self.near = near
            if near:
                await self._make_room(inodes)
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def _make_room(self, inodes: list[int]) -> None:
        # Read here, on the loop, where the request path writes it.
        busy = {r for r in map(remote, self.busy) if r is not None}
        wanted = len(inodes) - self.room
        ended = await asyncio.to_thread(end_idle, inodes, busy, wanted, MIN_IDLE_MS)
        if ended:
            log.debug("ended %d idle client connections to make room", ended)


class ConnectionRelief:
    """ASGI wrapper: counts each client address's requests in flight in `pressure.busy`,
    and while `pressure.near` every response carries `Connection: close`."""

    __slots__ = ("app", "pressure")

    def __init__(self, app: ASGIApp, pressure: ConnectionPressure) -> None:
        self.app = app
        self.pressure = pressure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = scope.get("client")
        # Granian's address tuple as it is: normalising it is left to the sampler, off the
        # request path.
        client = address if isinstance(address, tuple) else None
        busy = self.pressure.busy
        if client is not None:
            busy[client] = busy.get(client, 0) + 1
        try:
            await self.app(scope, receive, _closing(send) if self.pressure.near else send)
        finally:
            if client is not None:
                left = busy[client] - 1
                if left:
                    busy[client] = left
                else:
                    del busy[client]


def _closing(send: Send) -> Send:
    """`send`, with `Connection: close` put on the response head."""

    def closing(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
            message["headers"] = [*headers, _CLOSE]
        return send(message)

    return closing
