"""Keep-alive clients that fill every connection place do not lock new clients out: near
the cap swapgate answers `Connection: close`, and a new client is served within a bound."""

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


async def scenario(port: int) -> tuple[float, int]:
    stop = asyncio.Event()
    closes: list[int] = []
    pool = [asyncio.create_task(keep_alive_client(port, stop, closes)) for _ in range(LIMIT)]
    try:
        await asyncio.sleep(2.5)  # every place taken, each connection busy every 0.2 s
        started = time.monotonic()
        reader, writer = await connect(port)
        writer.write(head(port, "GET", "/health", "Connection: close"))
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
        return time.monotonic() - started, len(closes)
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
        assert "answers now close their connections" in gate.output()
