"""wait_healthy against real sockets: bare connects while nothing listens, HTTP once it does."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from swapgate.proxy.lifecycle.health import HealthTimeout, wait_healthy
from tests.support.procs import free_port
from tests.support.specs import run


async def _serve_after(delay_s: float, port: int, host: str, hits: list[float]) -> web.AppRunner:
    """An HTTP server whose /health answers 200, listening only after `delay_s`."""

    async def health(_request: web.Request) -> web.Response:
        hits.append(time.monotonic())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    await asyncio.sleep(delay_s)
    await web.TCPSite(runner, host, port).start()
    return runner


async def _healthy_after(delay_s: float, host: str, url_host: str) -> tuple[float, list[float]]:
    port = free_port()
    hits: list[float] = []
    exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(_serve_after(delay_s, port, host, hits))
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, f"http://{url_host}:{port}/health", exited, 10)
    took = time.monotonic() - started
    await (await server).cleanup()
    return took, hits


def test_polls_by_connect_until_listening_then_over_http() -> None:
    """While the port is closed no HTTP request is made (the server sees one, the last), and
    health is noticed within a few polls of the server starting to listen."""
    took, hits = run(_healthy_after(0.3, "127.0.0.1", "localhost"))
    assert len(hits) == 1
    assert 0.3 <= took < 0.3 + 0.25


def test_a_url_beyond_the_ipv4_check_is_polled_over_http() -> None:
    """A server named by its IPv6 loopback address gets plain HTTP polls from the start."""
    took, hits = run(_healthy_after(0.0, "::1", "[::1]"))
    assert len(hits) == 1
    assert took < 0.25


def test_an_exit_ends_the_wait_at_once() -> None:
    """A child that exits while polled ends the wait without a timeout."""

    async def scenario() -> float:
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, exited.set_result, 1)
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, f"http://127.0.0.1:{free_port()}/health", exited, 10)
        return time.monotonic() - started

    assert run(scenario()) < 0.5


def test_no_answer_times_out() -> None:
    """A port that stays closed times out with the URL in the message."""

    async def scenario() -> str:
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        url = f"http://127.0.0.1:{free_port()}/health"
        async with aiohttp.ClientSession() as session:
            with pytest.raises(HealthTimeout) as caught:
                await wait_healthy(session, url, exited, 0.2)
        return str(caught.value)

    assert "within 0.2s" in run(scenario())
