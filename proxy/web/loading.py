"""Loading state (llama-swap's `sendLoadingState`): while a streamed chat request waits for its
model, the client sees progress as `reasoning_content` deltas, then the model's own answer in
the same SSE stream. The status line goes out at once, so later errors arrive as an SSE error
event. Progress is pushed on lifecycle events, plus a once-a-second tick for the elapsed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any

import orjson
from blacksheep import Response, StreamedContent

from swapgate.proxy.errors import SwapgateError
from swapgate.proxy.events import Event, EventBus
from swapgate.proxy.lifecycle.lease import Lease
from swapgate.proxy.lifecycle.ticket import Ticket
from swapgate.proxy.web.forward import sse_error_event

TICK_S = 1.0
_EVENT_STREAM = b"text/event-stream"
Relay = Callable[[Lease], Awaitable[Response]]


def wants_loading_state(parsed: object, path: str) -> bool:
    """Only streamed chat completions carry loading progress (as llama-swap does)."""
    return (
        path == "/v1/chat/completions" and isinstance(parsed, dict) and parsed.get("stream") is True
    )


def loading_response(ticket: Ticket, model: str, bus: EventBus, relay: Relay) -> Response:
    """A 200 SSE response that reports progress until `ticket` is granted, then relays."""

    async def provide() -> AsyncIterator[bytes]:
        try:
            async for chunk in _progress(ticket, model, bus):
                yield chunk
            try:
                response = await relay(ticket.take())
            except SwapgateError as exc:
                yield sse_error_event(exc)
                return
            async for chunk in _body_of(response):
                yield chunk
        finally:
            ticket.cancel()  # the client left while waiting: leave the queue (no-op once taken)

    headers = [(b"x-accel-buffering", b"no"), (b"cache-control", b"no-cache")]
    return Response(int(HTTPStatus.OK), headers, StreamedContent(_EVENT_STREAM, provide))


async def _progress(ticket: Ticket, model: str, bus: EventBus) -> AsyncIterator[bytes]:
    started = time.monotonic()
    last = ""
    with bus.subscribe() as events:
        while not ticket.future.done():
            text = ticket.status()
            if text != last:
                last = text
                yield _delta(model, f"{text}\n")
            elif time.monotonic() - started >= TICK_S:
                yield _delta(model, f"… {time.monotonic() - started:.0f}s\n")
            await _next_change(ticket, events.get())


async def _next_change(ticket: Ticket, event: Coroutine[object, object, Event]) -> None:
    waiting: asyncio.Future[Any] = asyncio.ensure_future(event)
    granted: asyncio.Future[Any] = ticket.future
    try:
        # asyncio.wait neither cancels nor consumes the ticket's future
        await asyncio.wait({waiting, granted}, timeout=TICK_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting


async def _body_of(response: Response) -> AsyncIterator[bytes]:
    """The relayed response's bytes: a stream as it arrives, or a whole body once."""
    content = response.content
    if isinstance(content, StreamedContent):
        async for chunk in content.generator():
            yield chunk
    elif content is not None and content.body:
        if response.status >= HTTPStatus.BAD_REQUEST:
            yield b"data: " + content.body + b"\n\n"
        else:
            yield content.body


def _delta(model: str, text: str) -> bytes:
    chunk = {
        "id": "swapgate-loading",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": {"reasoning_content": text}, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
