"""Keep-alive clients that fill every connection place do not lock new clients out: near
the cap swapgate ends the longest-idle keep-alives and answers `Connection: close`, and a
new client is served within a bound, whether the keep-alives are busy or idle. Connections
with an answer still streaming, or a request still arriving, are left alone."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.rawhttp import connect, head
from tests.support.specs import run

pytestmark = pytest.mark.integration

LIMIT = 20
CONFIG = f"""
connections:
  limit: {LIMIT}
  headerTimeout: 60
models:
  a:
    cmd: {fake_cmd("a")}
"""


async def keep_alive_client(port: int, stop: asyncio.Event, closes: list[int]) -> None:
    """GET /health every 0.2 s on one connection; reconnect when the server closes it."""
    request = head(port, "GET", "/health")
    while not stop.is_set():
        try:
            reader, writer = await asyncio.wait_for(connect(port), 30)
        except (OSError, TimeoutError):
            continue
        try:
            while not stop.is_set():
                writer.write(request)
                answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                await reader.readexactly(
                    int(answer.split(b"content-length: ")[1].split(b"\r\n")[0])
                )
                if b"connection: close" in answer:
                    closes.append(1)
                    break
                await asyncio.sleep(0.2)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, IndexError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def new_client_wait(port: int) -> float:
    """How long a new client waits for its answer (30 s at most), which must be 200."""
    started = time.monotonic()
    reader, writer = await connect(port)
    writer.write(head(port, "GET", "/health", "Connection: close"))
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    return time.monotonic() - started


async def scenario(port: int) -> tuple[float, int]:
    stop = asyncio.Event()
    closes: list[int] = []
    pool = [asyncio.create_task(keep_alive_client(port, stop, closes)) for _ in range(LIMIT)]
    try:
        await asyncio.sleep(2.5)  # every place taken, each connection busy every 0.2 s
        return await new_client_wait(port), len(closes)
    finally:
        stop.set()
        await asyncio.wait(pool, timeout=15)
        for task in pool:
            task.cancel()


def test_a_new_client_is_served_while_keep_alives_fill_the_cap() -> None:
    with start_swapgate(CONFIG) as gate:
        waited, closes = run(scenario(gate.port))
        assert waited < 5, f"a new client waited {waited:.1f} s for a place"
        assert closes > 0  # the pool was told to close near the cap
        assert "ending idle ones and closing after each answer" in gate.output()


IDLE = 16  # keep-alives answered once, then silent
HALF_SENT = 3  # request heads still arriving (headerTimeout is 60 s)


async def idle_scenario(port: int) -> tuple[float, int, bytes, list[bytes]]:
    """IDLE idle keep-alives, an event stream and HALF_SENT half-sent heads fill the cap; a
    new client then asks. Returns its wait, how many idle connections were ended, what the
    event stream read meanwhile, and the answers to the half-sent heads, finished last."""
    # The stream opens first: by the kernel's view alone it is the longest idle of all.
    stream_reader, stream_writer = await connect(port)
    stream_writer.write(head(port, "GET", "/api/events"))
    events = await asyncio.wait_for(stream_reader.readuntil(b"\n\n"), 10)  # the snapshot
    idle = []
    for _ in range(IDLE):
        reader, writer = await connect(port)
        writer.write(head(port, "GET", "/health"))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        idle.append((reader, writer))
    half_sent = []
    for _ in range(HALF_SENT):
        reader, writer = await connect(port)
        writer.write(head(port, "GET", "/health", "Connection: close")[:20])
        half_sent.append((reader, writer))
    try:
        await asyncio.sleep(2.5)  # two samples: idle for more than a second at the second
        waited = await new_client_wait(port)
        ends = await asyncio.gather(*(_ended(idle_reader) for idle_reader, _ in idle))
        with contextlib.suppress(TimeoutError):
            events += await asyncio.wait_for(stream_reader.read(1), 0.5)
        events += b"<open>" if not stream_reader.at_eof() else b"<closed>"
        answers = []
        for reader, writer in half_sent:
            writer.write(head(port, "GET", "/health", "Connection: close")[20:])
            answers.append(await asyncio.wait_for(reader.read(), 10))
        return waited, sum(ends), events, answers
    finally:
        for _, idle_writer in [*idle, *half_sent, (stream_reader, stream_writer)]:
            idle_writer.close()


async def _ended(reader: asyncio.StreamReader) -> bool:
    """Whether the server has closed this connection (EOF or reset within 0.5 s); what is
    left of the last answer's body is read on the way."""
    try:
        await asyncio.wait_for(reader.read(), 0.5)
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_new_client_is_served_while_idle_keep_alives_fill_the_cap() -> None:
    with start_swapgate(CONFIG) as gate:
        waited, ended, events, answers = run(idle_scenario(gate.port))
        assert waited < 5, f"a new client waited {waited:.1f} s for a place"
        # the longest-idle keep-alives, down to 80 % of the cap, and no more
        assert LIMIT - int(LIMIT * 0.8) <= ended < IDLE
        assert events.endswith(b"<open>"), events[-200:]  # the stream was not cut
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers  # nor the heads
        assert "ending idle ones and closing after each answer" in gate.output()
