"""Slow, stalled and idle clients against a real swapgate: they time out and are closed, and
normal requests keep being answered; request bodies held at once stay within their budget."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator

import pytest

from swapgate.proxy.listener import connection_limit
from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import wait_until_async
from tests.support.rawhttp import (
    Reply,
    chat_request,
    connect,
    exchange,
    head,
    raise_open_files,
    read_reply,
    until_closed,
)
from tests.support.specs import run

pytestmark = pytest.mark.integration

OPEN_FILES = raise_open_files()  # hundreds to thousands of client sockets per test
NORMAL_BOUND_S = 10.0  # a normal request under attack is answered within this
KIB = 1024


def _config(top: str = "", **connections: object) -> str:
    section = "".join(f"  {key}: {value}\n" for key, value in connections.items())
    return f"{top}connections:\n{section}models:\n  a:\n    cmd: {fake_cmd('a')}\n"


@pytest.fixture(scope="module", name="quick")
def quick_fixture() -> Iterator[Swapgate]:
    """swapgate with 1 s head and body-pause bounds and a 2.5 s whole-body bound."""
    with start_swapgate(_config(headerTimeout=1, bodyIdleTimeout=1, bodyTimeout=2.5)) as gate:
        yield gate


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/upstream/a/v1/chat/completions"])
def test_a_body_that_stalls_gets_408_and_the_connection_closes(quick: Swapgate, path: str) -> None:
    """One body byte, then nothing: 408 after bodyIdleTimeout, and the server hangs up."""
    request = head(quick.port, "POST", path, length=100) + b"{"
    reply = run(exchange(quick.port, request, timeout=10))  # returns only at the server's close
    assert reply.status == 408
    assert 0.9 <= reply.elapsed_s < 4
    error = reply.json()["error"]
    assert isinstance(error, dict)
    assert error["code"] == "request_timeout"
    assert "connections.bodyIdleTimeout" in error["message"]


def test_a_trickled_body_gets_408_at_the_body_timeout(quick: Swapgate) -> None:
    """A byte every 0.3 s never pauses long enough for bodyIdleTimeout; bodyTimeout ends it."""

    async def scenario() -> tuple[int, float, object]:
        reader, writer = await connect(quick.port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(head(quick.port, "POST", "/v1/chat/completions", length=1000))

        async def trickle() -> None:
            with contextlib.suppress(OSError):
                for _ in range(30):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.3)

        sender = asyncio.create_task(trickle())
        try:
            reply = await asyncio.wait_for(read_reply(reader, started), 10)
        finally:
            sender.cancel()
            writer.close()
        return reply.status, reply.elapsed_s, reply.json()["error"]

    status, elapsed, error = run(scenario())
    assert status == 408
    assert 2.3 <= elapsed < 6
    assert isinstance(error, dict)
    assert "connections.bodyTimeout" in error["message"]


def test_an_idle_keep_alive_connection_is_closed_after_header_timeout(quick: Swapgate) -> None:
    """After a response, a keep-alive connection that sends nothing is closed at headerTimeout."""

    async def scenario() -> tuple[bytes, float]:
        reader, writer = await connect(quick.port)
        writer.write(head(quick.port, "GET", "/health"))
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        idle_since = asyncio.get_running_loop().time()
        await asyncio.wait_for(until_closed(reader), 10)
        writer.close()
        return answer, asyncio.get_running_loop().time() - idle_since

    answer, idle_s = run(scenario())
    assert answer.startswith(b"HTTP/1.1 200")
    assert 0.7 <= idle_s < 4


async def _stalled_uploads(port: int, stop: asyncio.Event, seen: Counter[str]) -> None:
    """Send a head and one body byte, wait to be dropped, reconnect; until `stop`."""
    while not stop.is_set():
        reader, writer = await connect(port)
        try:
            seen["stalled-open"] += 1
            writer.write(head(port, "POST", "/v1/chat/completions", length=1000) + b"{")
            answer = await until_closed(reader)
            seen["stalled-408" if answer.startswith(b"HTTP/1.1 408") else "stalled-other"] += 1
        finally:
            writer.close()


async def _slowloris(port: int, stop: asyncio.Event, seen: Counter[str]) -> None:
    """Send a head one line every 0.3 s, never ending it; reconnect when dropped; until `stop`."""
    while not stop.is_set():
        reader, writer = await connect(port)
        try:
            seen["slowloris-open"] += 1
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\n")
            await _trickle_head(reader, writer)
            seen["slowloris-dropped"] += 1
        finally:
            writer.close()


async def _trickle_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One more header line every 0.3 s until the server hangs up (at most 1,000 lines)."""
    with contextlib.suppress(OSError):
        for i in range(1000):
            writer.write(f"X-Slow-{i}: 1\r\n".encode())
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                if not await asyncio.wait_for(reader.read(1), 0.3):
                    return


async def _normal_chats(port: int, count: int, spacing_s: float) -> list[tuple[int, float]]:
    """`count` chats started `spacing_s` apart: (status, seconds to the complete answer)."""

    async def one(i: int) -> tuple[int, float]:
        await asyncio.sleep(i * spacing_s)
        reply = await exchange(port, chat_request(port), timeout=NORMAL_BOUND_S * 3)
        return reply.status, reply.elapsed_s

    return await asyncio.gather(*(one(i) for i in range(count)))


ATTACKERS = 2000  # of each kind


@pytest.mark.slow
def test_stalled_bodies_and_slowloris_do_not_take_swapgate_off_the_air() -> None:
    """2,000 stalled uploads and 2,000 slowloris heads, all reconnecting when dropped, against
    a 2,048-connection limit (Granian's old cap): the timeouts free the slots and 10 normal
    chats are each answered within NORMAL_BOUND_S."""
    config = _config(limit=2048, headerTimeout=1, bodyIdleTimeout=1)

    async def scenario(gate: Swapgate) -> tuple[list[tuple[int, float]], Counter[str]]:
        assert (await exchange(gate.port, chat_request(gate.port))).status == 200  # model up
        stop, seen = asyncio.Event(), Counter[str]()
        attackers = [
            asyncio.create_task(_stalled_uploads(gate.port, stop, seen)) for _ in range(ATTACKERS)
        ]
        attackers += [
            asyncio.create_task(_slowloris(gate.port, stop, seen)) for _ in range(ATTACKERS)
        ]
        try:
            await wait_until_async(
                lambda: seen["stalled-open"] >= ATTACKERS and seen["slowloris-open"] >= ATTACKERS,
                timeout=60,
                message=f"{2 * ATTACKERS} attacking connections",
            )
            answers = await _normal_chats(gate.port, 10, 0.4)
        finally:
            stop.set()
            for task in attackers:
                task.cancel()
            await asyncio.gather(*attackers, return_exceptions=True)
        return answers, seen

    with start_swapgate(config) as gate:
        answers, seen = run(scenario(gate))
    assert [status for status, _ in answers] == [200] * 10
    assert max(elapsed for _, elapsed in answers) < NORMAL_BOUND_S, answers
    assert seen["stalled-408"] >= 50, seen  # the stalled bodies were answered and dropped
    assert seen["slowloris-dropped"] >= 50, seen  # and the slow heads cut off


async def _idle_keep_alives(port: int, count: int) -> list[asyncio.StreamWriter]:
    """`count` connections that each got one /health answer and now sit idle."""

    async def one() -> asyncio.StreamWriter:
        reader, writer = await connect(port)
        writer.write(head(port, "GET", "/health"))
        answer = await reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        length = re.search(rb"content-length: (\d+)", answer, re.IGNORECASE)
        await reader.readexactly(int(length.group(1)) if length else 0)
        return writer

    async with asyncio.timeout(60):
        return await asyncio.gather(*(one() for _ in range(count)))


@pytest.mark.slow
def test_idle_keep_alives_beyond_granians_default_do_not_starve_new_clients() -> None:
    """5,000 idle keep-alive connections (Granian's default cap was 2,048): all were served,
    and with all of them open normal chats are still answered at once."""
    default_cap, _ = connection_limit(None, OPEN_FILES)
    count = min(5000, default_cap - 50)

    async def scenario(gate: Swapgate) -> list[tuple[int, float]]:
        idle = await _idle_keep_alives(gate.port, count)
        try:
            return await _normal_chats(gate.port, 5, 0.1)
        finally:
            for writer in idle:
                writer.close()

    with start_swapgate(_config(headerTimeout=60)) as gate:
        answers = run(scenario(gate))
        assert f"at most {default_cap} client connections" in gate.output()
    assert [status for status, _ in answers] == [200] * 5
    assert max(elapsed for _, elapsed in answers) < 5, answers


@pytest.mark.slow
def test_idle_keep_alives_beyond_the_limit_are_cycled_out() -> None:
    """1,000 keep-alive clients against a 300-connection limit: each idle one is closed at
    headerTimeout, so every client is served and normal chats wait a bounded time."""

    async def scenario(gate: Swapgate) -> list[tuple[int, float]]:
        chats = asyncio.create_task(_normal_chats(gate.port, 5, 0.5))
        idle = await _idle_keep_alives(gate.port, 1000)  # all 1,000 got their answer
        for writer in idle:
            writer.close()
        return await chats

    with start_swapgate(_config(limit=300, headerTimeout=1)) as gate:
        answers = run(scenario(gate))
    assert [status for status, _ in answers] == [200] * 5
    assert max(elapsed for _, elapsed in answers) < NORMAL_BOUND_S, answers


def test_bodies_beyond_the_buffer_budget_get_503_until_memory_is_free() -> None:
    """With 1 MiB of budget and two 400 KB uploads held open, a third large body gets 503 with
    Retry-After (declared or chunked); once the two leave, the same request is answered."""
    top = f"maxRequestBytes: {512 * KIB}\nmaxBufferedRequestBytes: {1024 * KIB}\n"
    config = _config(top, bodyIdleTimeout=30)

    async def scenario(gate: Swapgate) -> None:
        port = gate.port
        big = chat_request(port, padding=300_000)
        assert (await exchange(port, big)).status == 200  # fits while nothing else is held
        holders = []
        for _ in range(2):
            reader, writer = await connect(port)
            writer.write(head(port, "POST", "/v1/chat/completions", length=400_000) + b"{")
            holders.append((reader, writer))

        async def refused() -> bool:
            reply = await exchange(port, big)
            assert reply.status in (200, 503)
            if reply.status == 200:
                return False
            assert reply.headers["retry-after"] == "1"
            error = reply.json()["error"]
            assert isinstance(error, dict)
            assert error["code"] == "request_buffer_full"
            assert "maxBufferedRequestBytes" in error["message"]
            return True

        await _poll(refused, "503 for a body over the budget")
        assert (await _chunked_upload(port, 300_000)).status == 503
        for _, writer in holders:
            writer.close()

        async def answered() -> bool:
            return (await exchange(port, big)).status == 200

        await _poll(answered, "the budget freed again")

    with start_swapgate(config) as gate:
        run(scenario(gate))


async def _poll(attempt: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Retry `attempt` (one whole request) until it returns True, for up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while not await attempt():
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g}s waiting for {what}"
            raise TimeoutError(msg)
        await asyncio.sleep(0.05)


async def _chunked_upload(port: int, size: int) -> Reply:
    """A chunked body of `size` bytes sent 100 KB at a time, then its reply."""
    reader, writer = await connect(port)
    started = time.monotonic()
    writer.write(
        head(
            port, "POST", "/v1/chat/completions", "Transfer-Encoding: chunked", "Connection: close"
        )
    )
    with contextlib.suppress(OSError):
        for _ in range(size // 100_000):
            writer.write(b"%x\r\n" % 100_000 + b" " * 100_000 + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
    try:
        return await asyncio.wait_for(read_reply(reader, started), 10)
    finally:
        writer.close()
