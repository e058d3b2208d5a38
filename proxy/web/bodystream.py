"""`/upstream/...` request bodies: passed to the model server as they arrive, not held whole.

Nothing in such a body is needed for routing, so at most its first MiB is read before the
request waits for its model. A body that ends within it (almost every one) is sent as bytes,
which may be sent again on a fresh connection. A longer one becomes a BodyStream: aiohttp
pulls the rest from the client while it writes the request, one chunk at a time, under the
same limits as a read body (maxRequestBytes: 413; bodyIdleTimeout and bodyTimeout: 408).
Only the first MiB counts against maxBufferedRequestBytes: the rest is held no longer than
it takes to write it upstream.

While the body is still arriving, the client's `receive()` belongs to the stream; the
disconnect watch reads it only once the body has ended (see WATCH_RECEIVE_KEY), so it can
never take a body chunk for itself. A client that leaves while its request is queued is
therefore noticed when its turn comes, as the body is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import cast

from blacksheep import Request

from swapgate.proxy.config.model import Connections
from swapgate.proxy.errors import SwapgateError
from swapgate.proxy.web.bodyscope import hold_of
from swapgate.proxy.web.disconnect import WATCH_RECEIVE_KEY
from swapgate.proxy.web.extract import (
    BodyBudgetFull,
    BodyClock,
    client_gone,
    discard_rest,
    read_body,
    reserve,
    too_large,
)

Message = MutableMapping[str, object]
Receive = Callable[[], Awaitable[Message]]
_DISCONNECT: Message = {"type": "http.disconnect"}
# Read before the request waits for its model: a body that ends within it is sent as bytes
# (and may be sent again); a client that stalls within it gets its 408 before any model is
# started for it. Beyond it, a body streams.
PREFETCH_BYTES = 1 << 20


class BodyStream:
    """The rest of a request body, read from the client as aiohttp sends it upstream.

    `replayable` stays true while no more than the first chunk was taken (it is kept), so
    a request aiohttp could not send at all may be sent again. `failure` is the error that
    ended the body early (413, 408, the client leaving): aiohttp reports its own error for
    a failed body, and the caller raises this one instead.
    """

    __slots__ = (
        "_clock",
        "_first",
        "_limit",
        "_receive",
        "_taken",
        "complete",
        "done",
        "failure",
        "gone",
        "size",
    )

    def __init__(
        self, first: bytes, receive: Receive, clock: BodyClock, limit: int, size: int | None
    ) -> None:
        self._first = first
        self._receive: Receive | None = receive
        self._clock = clock
        self._limit = limit
        self._taken = 0  # chunks handed to aiohttp
        self.size = size  # the client's Content-Length, if it sent one
        self.failure: SwapgateError | None = None
        self.gone = False
        self.complete = False  # read to its end
        self.done = asyncio.Event()  # the body ended (read to its end, failed or abandoned)

    @property
    def replayable(self) -> bool:
        return self._taken <= 1 and not self.done.is_set()

    def __aiter__(self) -> AsyncIterator[bytes]:
        # aiohttp calls this when it wraps the stream, so every try gets its own iterator.
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        self._taken = 1
        try:
            yield self._first
            received = len(self._first)
            more = True
            while more:
                message = await self._clock.within(self._read)
                if message.get("type") == "http.disconnect":
                    self.gone = True
                    raise client_gone()
                chunk = cast("bytes", message.get("body", b""))
                more = bool(message.get("more_body"))
                if chunk:
                    received += len(chunk)
                    if received > self._limit:
                        raise too_large(received, self._limit)
                    self._taken += 1
                    yield chunk
            self.complete = True
        except SwapgateError as exc:
            self.failure = exc
            raise
        finally:
            if not self.complete:
                # Nothing reads this body again. An error's traceback holds this stream in
                # reference cycles that only the garbage collector frees, and while the
                # server's receive() is reachable Granian keeps the connection open.
                self._receive = None
            self.done.set()

    def _read(self) -> Awaitable[Message]:
        receive = self._receive
        if receive is None:
            raise client_gone()
        return receive()

    async def receive_after_body(self) -> Message:
        """The client's next message once the body has ended: what the disconnect watch
        reads instead of `receive()` itself."""
        await self.done.wait()
        if self.gone:
            return _DISCONNECT
        if not self.complete:
            # Failed or abandoned halfway: the server is owed body bytes that will never be
            # read, and a receive() pending now can keep it from closing the connection after
            # the error answer. Wait for the watch to be closed instead.
            await asyncio.get_running_loop().create_future()
        return await self._read()


async def passthrough_body(
    request: Request, limit: int, timeouts: Connections
) -> bytes | BodyStream | None:
    """The body as bytes when it ends within PREFETCH_BYTES, else a BodyStream that starts
    with what was read and goes on with the rest (and is registered as what the disconnect
    watch reads); None when there is no body."""
    receive: Receive | None = getattr(request.content, "receive", None)
    if receive is None:  # not an ASGI request (never the case under Granian)
        return await read_body(request, limit, timeouts) or None
    declared = request.get_first_header(b"content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    if size is not None and size > limit:
        raise too_large(size, limit)
    clock = BodyClock(timeouts)
    hold = hold_of(request.scope)
    chunks: list[bytes] = []
    received = 0
    more = True
    while more and received < PREFETCH_BYTES:
        message = await clock.within(receive)
        if message.get("type") == "http.disconnect":
            raise client_gone()
        chunk = cast("bytes", message.get("body", b""))
        more = bool(message.get("more_body"))
        if chunk:
            received += len(chunk)
            if received > limit:
                raise too_large(received, limit)
            if hold is not None:
                try:
                    reserve(hold, received)
                except BodyBudgetFull:
                    if more:  # the client still sending gets the 503 too
                        await discard_rest(receive, clock)
                    raise
            chunks.append(chunk)
    first = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not more:
        return first or None
    stream = BodyStream(first, receive, clock, limit, size)
    cast("MutableMapping[str, object]", request.scope)[WATCH_RECEIVE_KEY] = (
        stream.receive_after_body
    )
    return stream
