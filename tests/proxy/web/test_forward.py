"""forward.py's header rules and upstream.py's pools, retries and settings, in process.

The upstream is a scripted asyncio server on 127.0.0.1 port 0; aiohttp is the real one.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiohttp
import pytest
from blacksheep import Request

from swapgate.proxy.config.model import JSONValue, ModelSpec
from swapgate.proxy.errors import UpstreamError, UpstreamTimeout
from swapgate.proxy.lifecycle.lease import Lease
from swapgate.proxy.web.forward import connection_tokens, response_headers, upstream_request_headers
from swapgate.proxy.web.upstream import (
    UpstreamClients,
    UpstreamSettings,
    _never_sent,
    upstream_settings,
)
from tests.support.procs import LOCALHOST, wait_until_async

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
Answer = Callable[["Seen"], Awaitable[bytes | None]]


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run one async test body on a fresh event loop, bounded."""
    asyncio.run(asyncio.wait_for(coro, 20))


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the scripted server read."""

    conn: int
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Upstream:
    """A scripted HTTP/1.1 server; `answer` returns the reply, or None to hang up."""

    answer: Answer
    seen: list[Seen] = field(default_factory=list)
    conns: int = 0
    open: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index, self.conns, self.open = self.conns, self.conns + 1, self.open + 1
        try:
            while line := await reader.readline():
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                method, path, _ = line.decode().split(" ", 2)
                self.seen.append(Seen(index, method, path, headers))
                reply = await self.answer(self.seen[-1])
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def serving(answer: Answer) -> AsyncIterator[Upstream]:
    """An Upstream listening on a free port for the block."""
    upstream = Upstream(answer)
    server = await asyncio.start_server(upstream.handle, LOCALHOST, 0)
    upstream.url = f"http://{LOCALHOST}:{server.sockets[0].getsockname()[1]}"
    try:
        yield upstream
    finally:
        server.close()
        with suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)


async def always_ok(_seen: Seen) -> bytes:
    return OK


def spec_for(url: str, *, timeouts: dict[str, JSONValue] | None = None, **kw: Any) -> ModelSpec:
    raw: dict[str, JSONValue] = {} if timeouts is None else {"timeouts": timeouts}
    return ModelSpec(id="m", cmd="", proxy=url, raw=MappingProxyType(raw), **kw)


def lease_for(url: str, generation: int = 1) -> Lease:
    return Lease("m", url, generation, lambda: None)


# ---- headers ---------------------------------------------------------------------------------


def test_connection_tokens_are_the_named_headers_minus_hop_by_hop() -> None:
    """`Connection: keep-alive, X-A,x-b` names x-a and x-b; keep-alive and close are dropped anyway."""
    assert connection_tokens(b"keep-alive, X-A,x-b ,close") == {b"x-a", b"x-b"}
    assert connection_tokens(b"keep-alive") == frozenset()


def test_response_headers_drop_hop_by_hop_connection_named_and_content_type() -> None:
    """Upstream framing, Connection-named headers and Content-Type stay behind."""
    raw = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", b"10"),
        (b"Connection", b"keep-alive, X-Secret"),
        (b"Keep-Alive", b"timeout=5"),
        (b"X-Secret", b"s"),
        (b"X-Other", b"o"),
    ]
    assert response_headers(raw, "m") == [(b"X-Other", b"o"), (b"x-swapgate-model", b"m")]


def test_request_headers_drop_connection_named_ones() -> None:
    """Client headers named by its Connection header (or hop-by-hop) are not sent upstream."""
    request = Request("POST", b"/x", [])
    request.scope = {  # type: ignore[typeddict-item]  # only the headers are read
        "headers": [
            (b"host", b"gate"),
            (b"connection", b"keep-alive, x-trace"),
            (b"x-trace", b"t1"),
            (b"x-keep", b"k"),
            (b"content-length", b"2"),
        ]
    }
    assert upstream_request_headers(request) == [("x-keep", "k")]


def test_request_headers_drop_the_key_headers_unless_kept() -> None:
    """keep_key=False (keys configured, no forwardApiKey) drops Authorization and x-api-key."""
    raw = [(b"Authorization", b"Bearer sk-x"), (b"x-api-key", b"sk-x"), (b"x-keep", b"k")]
    request = Request("POST", b"/x", [])
    request.scope = {"headers": raw}  # type: ignore[typeddict-item]  # only the headers are read
    assert upstream_request_headers(request, keep_key=False) == [("x-keep", "k")]
    assert len(upstream_request_headers(request)) == 3


# ---- settings --------------------------------------------------------------------------------


def test_upstream_settings_take_llama_swap_defaults_and_zero_means_no_limit() -> None:
    """Absent timeouts are llama-swap's defaults; an explicit 0 turns a limit off."""
    assert upstream_settings(spec_for("http://u", max_connections=3)) == UpstreamSettings(
        max_connections=3, connect_s=30.0, response_header_s=None, idle_conn_s=90.0
    )
    zeros: dict[str, JSONValue] = {"connect": 0, "responseHeader": 5, "idleConn": 0, "keepalive": 0}
    assert upstream_settings(spec_for("http://u", timeouts=zeros)) == UpstreamSettings(
        max_connections=4,
        connect_s=None,
        response_header_s=5.0,
        idle_conn_s=None,
        keepalive_s=None,
    )


# ---- pools -----------------------------------------------------------------------------------


def test_requests_beyond_max_connections_never_wait_and_overflow_connections_close() -> None:
    """Five requests with maxConnections 2 all reach the server at once; the three extra
    connections close once idle (about a second), the two pooled ones stay."""

    async def main() -> None:
        all_in = asyncio.Event()

        async def answer(_seen: Seen) -> bytes:
            if len(upstream.seen) == 5:
                all_in.set()
            await all_in.wait()  # only answered once all five are in: none may queue
            return OK

        async with serving(answer) as upstream:
            clients = UpstreamClients()
            spec = spec_for(upstream.url, max_connections=2)
            lease = lease_for(upstream.url)

            async def one() -> None:
                response = await clients.send(lease, spec, "GET", "/", [], None)
                assert await response.raw.read() == b"{}"
                response.release()

            await asyncio.gather(*(one() for _ in range(5)))
            assert upstream.conns == 5  # none of the five waited for another's connection
            await wait_until_async(lambda: upstream.open == 2, 5, message="overflow closed")
            await clients.send(lease, spec, "GET", "/", [], None)  # a pooled one, reused
            assert upstream.conns == 5
            await clients.close()

    run(main())


def test_settings_are_fixed_per_backend_generation() -> None:
    """A generation keeps its pool and settings; the next one gets a fresh pool."""

    async def main() -> None:
        async with serving(always_ok) as upstream:
            clients = UpstreamClients()
            changed = spec_for(upstream.url, timeouts={"connect": 5})
            for spec, generation in ((spec_for(upstream.url), 1), (changed, 1), (changed, 2)):
                lease = lease_for(upstream.url, generation)
                response = await clients.send(lease, spec, "GET", "/", [], None)
                await response.raw.read()
                response.release()
            assert [s.conn for s in upstream.seen] == [0, 0, 1]
            await clients.close()

    run(main())


@pytest.mark.parametrize(("keepalive", "idle"), [(7, 7), (0, None)])
def test_tcp_keepalive_follows_timeouts_keepalive(keepalive: int, idle: int | None) -> None:
    """timeouts.keepalive N: SO_KEEPALIVE with N s idle and interval; 0: no probes."""

    async def main() -> None:
        async with serving(always_ok) as upstream:
            clients = UpstreamClients()
            spec = spec_for(upstream.url, timeouts={"keepalive": keepalive})
            response = await clients.send(lease_for(upstream.url), spec, "GET", "/", [], None)
            await response.raw.read()
            sock = _client_socket_to(upstream.url)
            try:
                enabled = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                assert bool(enabled) == (idle is not None)
                if idle is not None:
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == idle
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == idle
            finally:
                sock.close()
            response.release()
            await clients.close()

    run(main())


def _client_socket_to(url: str) -> socket.socket:
    """A duplicate of this process's socket connected to `url`'s port (from /proc/self/fd)."""
    port = int(url.rsplit(":", 1)[1])
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with suppress(OSError):
            if sock.family == socket.AF_INET and sock.getpeername()[1] == port:
                return sock
        sock.close()
    msg = f"no socket connected to port {port}"
    raise AssertionError(msg)


# ---- retries ---------------------------------------------------------------------------------


async def _unsent_error(url: str) -> aiohttp.ClientError:
    """What aiohttp raises when its pooled connection is closing as it writes a request.

    The reused connection's transport is closed in the trace hook that fires right after it
    left the pool: the race a server closing an idle keep-alive connection can win.
    """
    trace = aiohttp.TraceConfig()

    async def close_it(session: aiohttp.ClientSession, *_: object) -> None:
        connector: Any = session.connector  # test-only look at aiohttp's acquired set
        for proto in list(connector._acquired):
            proto.transport.close()

    trace.on_connection_reuseconn.append(close_it)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with session.get(url) as first:
            await first.read()
        try:
            await session.get(url)
        except aiohttp.ClientError as exc:
            return exc
    msg = "the request on a closed connection succeeded"
    raise AssertionError(msg)


def test_never_sent_tells_an_unwritten_request_from_a_sent_one() -> None:
    """A request that found its connection closing is unsent; one the server read is not."""

    async def main() -> None:
        async def hang_up_on_post(seen: Seen) -> bytes | None:
            return None if seen.method == "POST" else OK

        async with serving(hang_up_on_post) as upstream:
            unsent = await _unsent_error(upstream.url)
            assert _never_sent(unsent)
            # With a body, aiohttp's body writer wraps the same error (client_reqrep.write_bytes).
            wrapped = aiohttp.ClientOSError(None, "Can not write request body")
            wrapped.__cause__ = unsent
            assert _never_sent(wrapped)
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.ServerDisconnectedError) as sent:
                    await session.post(upstream.url, data=b"{}")
            assert not _never_sent(sent.value)
            assert not _never_sent(aiohttp.ClientConnectionResetError("Connection lost"))

    run(main())


def test_a_post_that_was_never_sent_is_sent_once_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry covers any method when the first try wrote nothing; the server sees one POST."""

    async def main() -> None:
        async with serving(always_ok) as upstream:
            unsent = await _unsent_error(upstream.url)
            before = len(upstream.seen)
            original = aiohttp.ClientSession.request
            tries: list[str] = []

            def first_fails(self: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
                tries.append(method)
                if len(tries) == 1:

                    async def fail() -> None:
                        raise unsent

                    return fail()
                return original(self, method, url, **kw)

            monkeypatch.setattr(aiohttp.ClientSession, "request", first_fails)
            clients = UpstreamClients()
            response = await clients.send(
                lease_for(upstream.url), spec_for(upstream.url), "POST", "/", [], b"{}"
            )
            assert response.raw.status == 200
            response.release()
            assert tries == ["POST", "POST"]
            assert [s.method for s in upstream.seen[before:]] == ["POST"]
            await clients.close()

    run(main())


def test_a_refused_connection_is_an_upstream_error_naming_the_model() -> None:
    """Nobody listening: UpstreamError (502) with the model and its URL, not an aiohttp error."""

    async def main() -> None:
        with socket.socket() as probe:
            probe.bind((LOCALHOST, 0))
            url = f"http://{LOCALHOST}:{probe.getsockname()[1]}"  # bound, never listening
            clients = UpstreamClients()
            with pytest.raises(UpstreamError) as refused:
                await clients.send(lease_for(url), spec_for(url), "POST", "/", [], b"{}")
            assert "'m'" in refused.value.message
            assert url in refused.value.message
            await clients.close()

    run(main())


def test_connect_timeout_is_timeouts_connect_and_names_it() -> None:
    """A server whose accept queue is full never completes the connect: 504 after connect s."""

    async def main() -> None:
        with socket.socket() as server:
            server.bind((LOCALHOST, 0))
            server.listen(0)  # never accepts: once its queue is full, SYNs are dropped
            url = f"http://{LOCALHOST}:{server.getsockname()[1]}"
            fillers = [socket.socket() for _ in range(3)]
            for filler in fillers:
                filler.setblocking(False)
                with suppress(BlockingIOError):
                    filler.connect(server.getsockname())
            try:
                clients = UpstreamClients()
                spec = spec_for(url, timeouts={"connect": 1})
                started = asyncio.get_running_loop().time()
                with pytest.raises(UpstreamTimeout) as slow:
                    await clients.send(lease_for(url), spec, "GET", "/", [], None)
                assert asyncio.get_running_loop().time() - started < 3
                assert "within 1 s (timeouts.connect)" in slow.value.message
                await clients.close()
            finally:
                for filler in fillers:
                    filler.close()

    run(main())
