"""Upstream HTTP client: one keep-alive pool per backend, bounded, and the only place aiohttp
errors are caught and turned into proxy.errors (so callers see one error vocabulary).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import aiohttp

from proxy.errors import UpstreamError, UpstreamTimeout
from proxy.lifecycle.lease import Lease

log = logging.getLogger("swapgate.upstream")

_CONNECT_TIMEOUT_S = 10.0
_KEEPALIVE_S = 30.0
# Generation alone is not enough if the server restarted outside our control; a request that
# fails on a reused connection before any response is retried once on a fresh one.
_RETRYABLE = (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError)
Headers = Sequence[tuple[str, str]]


class UpstreamClients:
    """ClientSessions keyed by model id; a new backend generation gets a fresh pool."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[int, aiohttp.ClientSession]] = {}
        self._closing: set[asyncio.Task[None]] = set()  # referenced so they are not collected

    def _session(self, lease: Lease, max_connections: int) -> aiohttp.ClientSession:
        current = self._sessions.get(lease.model)
        if current is not None and current[0] == lease.generation:
            return current[1]
        if current is not None:
            # The server behind the old pool was restarted: its connections are dead.
            task = asyncio.create_task(current[1].close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=max_connections,  # never more connections than the server has threads
                limit_per_host=max_connections,
                keepalive_timeout=_KEEPALIVE_S,
            ),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT_S),
            auto_decompress=False,  # bytes pass through untouched, encoding and all
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            raise_for_status=False,
        )
        self._sessions[lease.model] = (lease.generation, session)
        return session

    async def send(
        self,
        lease: Lease,
        max_connections: int,
        method: str,
        path_qs: str,
        headers: Headers,
        body: bytes | None,
    ) -> aiohttp.ClientResponse:
        """Send the request upstream and return the response once its headers arrived."""
        session = self._session(lease, max_connections)
        url = lease.url.rstrip("/") + path_qs
        for attempt in (1, 2):
            try:
                return await session.request(
                    method, url, headers=headers, data=body, allow_redirects=False
                )
            except _RETRYABLE as exc:
                if attempt == 2:  # the second and last try
                    raise _upstream_error(lease, exc) from exc
                log.debug("retrying %s on a fresh connection: %s", lease.model, exc)
            except TimeoutError as exc:
                msg = f"model {lease.model!r} did not accept a connection at {lease.url}"
                raise UpstreamTimeout(msg) from exc
            except aiohttp.ClientError as exc:
                raise _upstream_error(lease, exc) from exc
        raise AssertionError  # pragma: no cover - the loop returns or raises

    async def close(self) -> None:
        for _, session in self._sessions.values():
            await session.close()
        self._sessions.clear()
        if self._closing:
            await asyncio.gather(*self._closing)


def _upstream_error(lease: Lease, exc: BaseException) -> UpstreamError:
    return UpstreamError(
        f"model {lease.model!r} at {lease.url} failed before answering: {_describe(exc)}"
    )


async def iter_body(response: aiohttp.ClientResponse, model: str) -> AsyncIterator[bytes]:
    """Upstream body chunks as they arrive (never empty); aiohttp errors -> UpstreamError."""
    try:
        async for chunk in response.content.iter_any():
            if chunk:
                yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        msg = f"model {model!r} stopped mid-response: {_describe(exc)}"
        raise UpstreamError(msg) from exc


async def read_body(response: aiohttp.ClientResponse, model: str) -> bytes:
    """The whole upstream body (used when its length is known and small)."""
    try:
        return await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        msg = f"model {model!r} stopped mid-response: {_describe(exc)}"
        raise UpstreamError(msg) from exc


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
