"""Upstream HTTP client: per backend a bounded keep-alive pool plus unpooled overflow, and the
only place aiohttp errors are caught and turned into proxy.errors (so callers see one error
vocabulary). Imports nothing from proxy.web.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from swapgate.proxy.config.extras import MODEL_TIMEOUTS
from swapgate.proxy.config.model import ModelSpec
from swapgate.proxy.errors import UpstreamError, UpstreamTimeout
from swapgate.proxy.lifecycle.lease import Lease

log = logging.getLogger("swapgate.upstream")

Headers = Sequence[tuple[str, str]]
# aiohttp's message when the connection it was given is already closing as it writes the
# request (http_writer.StreamWriter._write raises it before transport.write): not one byte
# of the request left, so any method may be sent again. Any other reset may come after the
# server read the request. Known gap (Python 3.11): aiohttp writes a body from a task of its
# own, and a connection lost before that task runs is reported as ServerDisconnectedError,
# which is not retried for a POST: a 502 then, never a request sent twice. If aiohttp ever
# rewords the message, requests that were never sent are simply no longer retried either.
_NOT_WRITTEN = "Cannot write to closing transport"


class StreamedBody(Protocol):
    """A request body read from the client while it is sent (proxy/web/bodystream.py)."""

    @property
    def failure(self) -> BaseException | None:
        """What ended the body early, if anything did (raised instead of aiohttp's error)."""
        ...

    @property
    def replayable(self) -> bool:
        """Whether it can still be sent again from its start."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


Body = bytes | StreamedBody | None


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """How swapgate talks to one backend; times in seconds, None = no limit.

    From `maxConnections` and llama-swap's per-model `timeouts` (an explicit 0 = no limit):
    `connect` bounds the TCP (and TLS) connect; `responseHeader` the wait for the response
    headers, request included; `idleConn` how long a pooled connection may sit idle;
    `keepalive` the TCP keep-alive probe idle time and interval (0 = no probes). There is
    no `tlsHandshake` of its own: aiohttp times TCP and TLS together, under `connect`; and
    `expectContinue` never applies: swapgate drops `Expect` and sends the body at once.
    `read_idle_s` is the longest silence allowed between two reads of a response; it is off
    (None) by default, because a server may think for minutes before its first byte (a long
    prompt on a slow machine), and a stream that still produces is never silent that long.
    A client that gives up disconnects, and that drops the upstream request at once.
    """

    max_connections: int
    connect_s: float | None = 30.0
    response_header_s: float | None = None
    idle_conn_s: float | None = 90.0
    keepalive_s: float | None = 30.0
    read_idle_s: float | None = None


def upstream_settings(spec: ModelSpec) -> UpstreamSettings:
    """The settings in `spec` (its `raw["timeouts"]`, llama-swap's defaults where absent)."""
    raw = spec.raw.get("timeouts")
    timeouts: Mapping[str, object] = raw if isinstance(raw, Mapping) else {}

    def seconds(key: str) -> float | None:
        value = timeouts.get(key, MODEL_TIMEOUTS[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return None  # 0: no limit (validated config never holds anything else here)
        return float(value)

    return UpstreamSettings(
        max_connections=spec.max_connections,
        connect_s=seconds("connect"),
        response_header_s=seconds("responseHeader"),
        idle_conn_s=seconds("idleConn"),
        keepalive_s=seconds("keepalive"),
    )


# Connections beyond maxConnections are kept while busy traffic reuses them (opening one per
# request cost about 2% of TTFT at 32 streams) and closed after a second idle, so they do not
# hold a server's HTTP threads for long once the burst is over.
_OVERFLOW_IDLE_S = 1.0


class _BackendPool:
    """One backend generation's sessions: `pooled` keeps at most `max_connections` keep-alive
    connections and carries a request only while fewer than that are in flight through it;
    the rest go through `overflow`, whose connections close once idle for about a second. So
    no request waits for a connection, and beyond that second never more connections sit idle
    than the server has threads for (llama-server: an idle keep-alive connection holds an
    HTTP thread).
    """

    __slots__ = ("_overflow", "generation", "in_flight", "pooled", "settings")

    def __init__(self, generation: int, settings: UpstreamSettings) -> None:
        self.generation = generation
        self.settings = settings
        self.in_flight = 0  # requests holding (or acquiring) a `pooled` connection
        limit = settings.max_connections
        connector = aiohttp.TCPConnector(
            # Never reached (in_flight gates the pool first): it only makes sure.
            limit=limit,
            limit_per_host=limit,
            keepalive_timeout=settings.idle_conn_s,
            socket_factory=_socket_factory(settings),
        )
        self.pooled = _new_session(settings, connector)
        self._overflow: aiohttp.ClientSession | None = None  # made on first use

    @property
    def overflow(self) -> aiohttp.ClientSession:
        if self._overflow is None:
            connector = aiohttp.TCPConnector(
                limit=0,
                keepalive_timeout=_OVERFLOW_IDLE_S,
                socket_factory=_socket_factory(self.settings),
            )
            self._overflow = _new_session(self.settings, connector)
        return self._overflow

    async def close(self) -> None:
        await self.pooled.close()
        if self._overflow is not None:
            await self._overflow.close()


def _new_session(
    settings: UpstreamSettings, connector: aiohttp.TCPConnector
) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=None,  # the default 300 s would cut long streams
            sock_connect=settings.connect_s,
            sock_read=settings.read_idle_s,
        ),
        auto_decompress=False,  # bytes pass through untouched, encoding and all
        skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        raise_for_status=False,
    )


def _socket_factory(settings: UpstreamSettings) -> aiohttp.SocketFactoryType | None:
    """Sockets with TCP keep-alive: the first probe after `keepalive_s` of silence, then one
    every `keepalive_s` (Go's net.Dialer.KeepAlive, which llama-swap's `keepalive` sets)."""
    if settings.keepalive_s is None:
        return None
    interval = max(1, round(settings.keepalive_s))

    def make(addr_info: aiohttp.AddrInfoType) -> socket.socket:
        family, kind, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=kind, proto=proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if hasattr(socket, "TCP_KEEPIDLE"):  # Linux; other systems keep their defaults
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        except OSError:
            sock.close()
            raise
        return sock

    return make


class UpstreamResponse:
    """An upstream response and its hold on the backend's pool; end it with exactly one of
    `release()` (body read to the end: the connection may be reused) or `close()` (drop the
    connection); either is idempotent."""

    __slots__ = ("_pool", "raw")

    def __init__(self, raw: aiohttp.ClientResponse, pool: _BackendPool | None) -> None:
        self.raw = raw
        self._pool = pool  # None: an overflow response, which holds no pooled slot

    def release(self) -> None:
        self.raw.release()
        self._free()

    def close(self) -> None:
        self.raw.close()
        self._free()

    def _free(self) -> None:
        # After raw.release()/close(): the connector has its connection back by now, so the
        # next request let into `pooled` can never wait for one.
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.in_flight -= 1


class UpstreamClients:
    """The backend pools, keyed by model id; a new backend generation gets fresh ones."""

    def __init__(self) -> None:
        self._pools: dict[str, _BackendPool] = {}
        self._closing: set[asyncio.Task[None]] = set()  # referenced so they are not collected

    def _pool(self, lease: Lease, spec: ModelSpec) -> _BackendPool:
        """The pool of the lease's backend generation. Its settings are read from `spec` once,
        when the generation's first request makes the pool: a changed spec takes effect at
        the backend's next start (a model whose config changed is restarted)."""
        current = self._pools.get(lease.model)
        if current is not None and current.generation == lease.generation:
            return current
        if current is not None:
            # The server behind the old pool was restarted: its connections are dead.
            task = asyncio.create_task(current.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        pool = _BackendPool(lease.generation, upstream_settings(spec))
        self._pools[lease.model] = pool
        return pool

    async def send(
        self,
        lease: Lease,
        spec: ModelSpec,
        method: str,
        path_qs: str,
        headers: Headers,
        body: Body,
    ) -> UpstreamResponse:
        """Send the request upstream and return the response once its headers arrived."""
        pool = self._pool(lease, spec)
        url = lease.url.rstrip("/") + path_qs
        # No await between this check and the increment: a pooled slot is never oversold.
        if pool.in_flight < pool.settings.max_connections:
            pool.in_flight += 1
            try:
                raw = await _send(pool.pooled, pool.settings, lease, method, url, headers, body)
            except BaseException:
                pool.in_flight -= 1  # aiohttp has closed the connection already
                raise
            return UpstreamResponse(raw, pool)
        raw = await _send(pool.overflow, pool.settings, lease, method, url, headers, body)
        return UpstreamResponse(raw, None)

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        if self._closing:
            await asyncio.gather(*self._closing)


async def _send(
    session: aiohttp.ClientSession,
    settings: UpstreamSettings,
    lease: Lease,
    method: str,
    url: str,
    headers: Headers,
    body: Body,
) -> aiohttp.ClientResponse:
    """One request, retried once if it was never sent; aiohttp errors -> proxy.errors.

    aiohttp itself sends an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) once
    more when its connection breaks before the response (RFC 9112 §9.3.1); a POST that may
    have reached the server is not sent again, nor is a streamed body once more than its
    first chunk was taken. A streamed body that failed (413, 408, the client left) raises
    its own error.
    """
    for attempt in (1, 2):
        try:
            if settings.response_header_s is None:
                return await session.request(
                    method, url, headers=headers, data=body, allow_redirects=False
                )
            deadline = asyncio.timeout(settings.response_header_s)
            try:
                async with deadline:
                    return await session.request(
                        method, url, headers=headers, data=body, allow_redirects=False
                    )
            except TimeoutError as exc:
                if deadline.expired():
                    raise _header_timeout(lease, settings.response_header_s) from exc
                raise
        except TimeoutError as exc:  # aiohttp's ConnectionTimeoutError, SocketTimeoutError
            _raise_body_failure(body, exc)
            raise _timeout_error(lease, settings, exc) from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable: nothing was sent
            raise _upstream_error(lease, exc) from exc
        except aiohttp.ClientError as exc:
            _raise_body_failure(body, exc)
            replayable = body is None or isinstance(body, bytes) or body.replayable
            if attempt == 2 or not replayable or not _never_sent(exc):  # the last try
                raise _upstream_error(lease, exc) from exc
            log.debug("sending to %s again on a fresh connection: %s", lease.model, exc)
    raise AssertionError  # pragma: no cover - the loop returns or raises


def _raise_body_failure(body: Body, exc: BaseException) -> None:
    """Raise what ended a streamed body early, in place of aiohttp's error about it."""
    failure = None if body is None or isinstance(body, bytes) else body.failure
    if failure is not None:
        raise failure from exc


def _never_sent(exc: BaseException) -> bool:
    """True when aiohttp found its connection closing before it wrote a byte of the request.

    Without a body it raises that error itself; with one it is the cause of a ClientOSError
    raised by the body writer (one write carries headers and body).
    """
    for error in (exc, exc.__cause__):
        if isinstance(error, aiohttp.ClientConnectionResetError) and error.args == (_NOT_WRITTEN,):
            return True
    return False


def _header_timeout(lease: Lease, seconds: float) -> UpstreamTimeout:
    return UpstreamTimeout(
        f"model {lease.model!r} at {lease.url} sent no response headers within {seconds:g} s "
        "(timeouts.responseHeader)"
    )


def _timeout_error(lease: Lease, settings: UpstreamSettings, exc: BaseException) -> UpstreamTimeout:
    if isinstance(exc, aiohttp.ConnectionTimeoutError) and settings.connect_s is not None:
        return UpstreamTimeout(
            f"model {lease.model!r} did not accept a connection at {lease.url} within "
            f"{settings.connect_s:g} s (timeouts.connect)"
        )
    return UpstreamTimeout(f"model {lease.model!r} at {lease.url} timed out: {_describe(exc)}")


def _upstream_error(lease: Lease, exc: BaseException) -> UpstreamError:
    return UpstreamError(
        f"model {lease.model!r} at {lease.url} failed before answering: {_describe(exc)}"
    )


async def iter_body(response: UpstreamResponse, model: str) -> AsyncIterator[bytes]:
    """Upstream body chunks as they arrive (never empty); aiohttp errors -> UpstreamError."""
    try:
        async for chunk in response.raw.content.iter_any():
            if chunk:
                yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        msg = f"model {model!r} stopped mid-response: {_describe(exc)}"
        raise UpstreamError(msg) from exc


async def read_body(response: UpstreamResponse, model: str) -> bytes:
    """The whole upstream body (used when its length is known and small)."""
    try:
        return await response.raw.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        msg = f"model {model!r} stopped mid-response: {_describe(exc)}"
        raise UpstreamError(msg) from exc


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
