"""Relay one request to a leased backend and its answer back, byte for byte.

SSE and other unsized bodies stream chunk by chunk as they arrive (no decoding, no buffering);
small sized bodies are read whole, which is cheaper for both ends. The lease is released when
the response is fully relayed, or the client goes away, never before.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

import aiohttp
from blacksheep import Content, Request, Response, StreamedContent

from proxy.errors import SwapgateError, UpstreamError
from proxy.lifecycle.lease import Lease
from proxy.web.disconnect import DisconnectWatch
from proxy.web.envelope import error_body
from proxy.web.tap import RouteTap
from proxy.web.upstream import UpstreamClients, iter_body, read_body

log = logging.getLogger("swapgate.forward")

# RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the server or client library sets itself.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
    }
)
_READ_WHOLE_LIMIT = 1 << 20
_EVENT_STREAM = "text/event-stream"
_OCTETS = b"application/octet-stream"
CLIENT_CLOSED = 499  # nginx's status for "client closed the request"; nobody reads it


def upstream_request_headers(request: Request) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop ones, as aiohttp takes them."""
    raw: Sequence[tuple[bytes, bytes]] = request.scope["headers"]
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw
        if name.lower() not in _HOP_BY_HOP
    ]


async def forward(
    clients: UpstreamClients,
    lease: Lease,
    max_connections: int,
    request: Request,
    path_qs: str,
    body: bytes | None,
    *,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    tap: RouteTap | None = None,
) -> Response:
    """Send upstream and build the client response. Takes ownership of `lease`.

    `tap` (routed requests only) sees every chunk and may rewrite it.
    """
    watch = DisconnectWatch.for_request(request)
    try:
        upstream = await watch.unless_gone(
            clients.send(
                lease,
                max_connections,
                request.method,
                path_qs,
                upstream_request_headers(request),
                body,
            )
        )
    except SwapgateError as exc:
        watch.close()
        lease.release()
        if tap is not None:
            tap.done(int(exc.status))
        raise
    except BaseException:
        watch.close()
        lease.release()
        raise
    if upstream is None:  # the client left while the upstream was still thinking
        watch.close()
        lease.release()
        return Response(CLIENT_CLOSED, None, None)
    headers = _response_headers(upstream, lease.model)
    headers.extend(extra_headers)
    content_type = upstream.headers.get("Content-Type", "")
    length = upstream.content_length
    if length is not None and length <= _READ_WHOLE_LIMIT and _EVENT_STREAM not in content_type:
        try:
            data = await read_body(upstream, lease.model)
        except SwapgateError as exc:
            if tap is not None:
                tap.done(int(exc.status))
            raise
        finally:
            watch.close()
            upstream.release()
            lease.release()
        if tap is not None:
            data = tap.chunk(data) + tap.finish()
            tap.done(upstream.status)
        return Response(upstream.status, headers, Content(_content_type(content_type), data))
    is_sse = _EVENT_STREAM in content_type
    if is_sse:
        headers.append((b"x-accel-buffering", b"no"))
    watch.on_gone(upstream.close)  # dropping the connection makes the server stop generating
    provider = _relay(upstream, lease, watch, tap, is_sse=is_sse)
    return Response(
        upstream.status, headers, StreamedContent(_content_type(content_type), provider)
    )


def _content_type(value: str) -> bytes:
    return value.encode("latin-1") if value else _OCTETS


def _response_headers(upstream: aiohttp.ClientResponse, model: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (name, value)
        for name, value in upstream.raw_headers
        if name.lower() not in _HOP_BY_HOP and name.lower() != b"content-type"
    ]
    headers.append((b"x-swapgate-model", model.encode()))
    return headers


def _relay(
    upstream: aiohttp.ClientResponse,
    lease: Lease,
    watch: DisconnectWatch,
    tap: RouteTap | None,
    *,
    is_sse: bool,
) -> Callable[[], AsyncIterator[bytes]]:
    """An async-generator *function* (what StreamedContent wants) over the upstream body."""
    if tap is not None:
        return _tapped_relay(upstream, lease, watch, tap, is_sse=is_sse)

    async def provide() -> AsyncIterator[bytes]:
        completed = False
        try:
            async for chunk in iter_body(upstream, lease.model):
                yield chunk
            completed = True
        except UpstreamError as exc:
            if not watch.gone:  # else we closed it ourselves: the client left
                log.warning("%s", exc.message)
                if is_sse:
                    yield sse_error_event(exc)
        finally:
            watch.close()
            # close(), not release(): if the client left mid-stream, dropping the connection
            # is what tells the server to stop generating.
            if completed:
                upstream.release()
            else:
                upstream.close()
            lease.release()

    return provide


def _tapped_relay(
    upstream: aiohttp.ClientResponse,
    lease: Lease,
    watch: DisconnectWatch,
    tap: RouteTap,
    *,
    is_sse: bool,
) -> Callable[[], AsyncIterator[bytes]]:
    """The relay for routed requests: every chunk goes through the tap on its way out."""
    inner = _relay(upstream, lease, watch, None, is_sse=is_sse)

    async def provide() -> AsyncIterator[bytes]:
        try:
            async for chunk in inner():
                out = tap.chunk(chunk)
                if out:  # an empty chunk would end the response early
                    yield out
            rest = tap.finish()
            if rest:
                yield rest
        finally:
            tap.done(upstream.status)

    return provide


def sse_error_event(exc: SwapgateError) -> bytes:
    """One SSE event carrying an OpenAI error envelope."""
    return b"data: " + error_body(exc.message, exc.error_type, exc.code) + b"\n\n"
