"""Paced token streaming shared by the OpenAI and Anthropic endpoints.

Token ``i`` of a response is due at ``start + ttft + i * token_interval``, scheduled against
absolute deadlines so that slow writes do not accumulate drift. Every SSE event is written to
the transport as soon as it is due; aiohttp sets TCP_NODELAY, so nothing is held back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_writer import StreamWriter

from swapgate.bench.fake_upstream.context import Context

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
CRASH_STATUS = 3


async def sleep_until(deadline: float) -> None:
    """Sleep until the event-loop time ``deadline``; return at once if it has passed."""
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


def crash(sent: int) -> None:
    """Exit the whole process at once, as a crashing inference server would."""
    os.write(2, f"fatal: simulated crash after {sent} tokens\n".encode())
    os._exit(CRASH_STATUS)


async def wait_for_completion(ctx: Context, count: int) -> None:
    """Wait as long as a non-streaming answer of ``count`` tokens takes; honour --exit-after."""
    opts = ctx.opts
    start = asyncio.get_running_loop().time() + opts.ttft
    if opts.exit_after is not None and opts.exit_after < count:
        await sleep_until(start + opts.exit_after * opts.token_interval)
        crash(opts.exit_after)
    await sleep_until(start + count * opts.token_interval)


async def stream_tokens(
    ctx: Context,
    request: web.Request,
    *,
    first: bytes,
    token: bytes,
    count: int,
    tail: Callable[[], bytes],
) -> web.StreamResponse:
    """Send ``first`` after the TTFT, then ``count`` copies of ``token``, then ``tail()``.

    A client that goes away mid-stream is counted in ``streams_cancelled``; the handler then
    returns quietly because there is nobody left to answer.
    """
    opts, stats = ctx.opts, ctx.stats
    start = asyncio.get_running_loop().time() + opts.ttft
    resp = web.StreamResponse(headers=SSE_HEADERS)
    stats.streams_started += 1
    try:
        writer = await resp.prepare(request)
        if opts.ttft > 0 and isinstance(writer, StreamWriter):
            writer.send_headers()  # a real server answers with headers before the first token
        await sleep_until(start)
        if first:
            await resp.write(first)
        await _send_tokens(ctx, resp, token, count, start)
        await resp.write(tail())
        await resp.write_eof()
    except ConnectionResetError:
        stats.streams_cancelled += 1
        return resp
    except asyncio.CancelledError:
        stats.streams_cancelled += 1
        raise
    stats.streams_completed += 1
    return resp


async def _send_tokens(
    ctx: Context, resp: web.StreamResponse, token: bytes, count: int, start: float
) -> None:
    interval, exit_after = ctx.opts.token_interval, ctx.opts.exit_after
    for sent in range(count):
        if sent == exit_after:
            crash(sent)
        if sent and interval:
            await sleep_until(start + sent * interval)
        await resp.write(token)
    if count == exit_after:
        crash(count)
