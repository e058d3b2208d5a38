"""Relay one request to a leased backend and its answer back, byte for byte.

SSE and other large or unsized bodies stream chunk by chunk as they arrive (no decoding, no
buffering); small sized bodies are read whole, which is cheaper for both ends. A sized body
keeps its Content-Length. If the upstream dies mid-body the client's response is aborted
(an SSE stream gets an error event first), so a truncated body never looks complete. The
lease is released when the response is fully relayed, or the client goes away, never before.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from http import HTTPStatus

from blacksheep import Content, Request, Response, StreamedContent

from swapgate.proxy.config.model import ModelSpec
from swapgate.proxy.errors import SwapgateError, UpstreamError
from swapgate.proxy.lifecycle.lease import Lease
from swapgate.proxy.web.access import KEY_NAME_KEY
from swapgate.proxy.web.disconnect import DisconnectWatch
from swapgate.proxy.web.envelope import error_event, is_anthropic_path
from swapgate.proxy.web.tap import RouteTap
from swapgate.proxy.web.upstream import (
    Body,
    UpstreamClients,
    UpstreamResponse,
    iter_body,
    read_body,
)

log = logging.getLogger("swapgate.forward")

# RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the server or client library sets itself.
# Headers that a `Connection` header names are hop-by-hop too and are dropped as well.
_HOP_BY_HOP_STR = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
    }
)
_HOP_BY_HOP = frozenset(name.encode() for name in _HOP_BY_HOP_STR)
# With keys configured, the headers that carry swapgate's key stay here (unless the model sets
# forwardApiKey): the model server never sees a client's swapgate key.
_HOP_BY_HOP_AND_KEY = _HOP_BY_HOP | {b"authorization", b"x-api-key"}
_CONNECTION = b"connection"
# The usual Connection values, which name no other header: no need to parse them.
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"Keep-Alive", b"Close"})
_CONTENT_TYPE = b"content-type"
_READ_WHOLE_LIMIT = 1 << 20
_EVENT_STREAM = "text/event-stream"
_OCTETS = b"application/octet-stream"
_HEAD = "HEAD"
# Statuses whose responses never have a body (RFC 9110 §6.4.1): no content type is added.
_BODILESS = frozenset({HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED})
CLIENT_CLOSED = 499  # nginx's status for "client closed the request"; nobody reads it


def upstream_request_headers(request: Request, *, keep_key: bool = True) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop ones (and those its `Connection` names), and
    minus `Authorization` and `x-api-key` unless `keep_key`, as aiohttp takes them."""
    raw: Sequence[tuple[bytes, bytes]] = request.scope["headers"]
    headers: list[tuple[str, str]] = []
    append = headers.append  # the loop runs per request: kept as cheap as a comprehension
    connection: bytes | None = None
    dropped = _HOP_BY_HOP if keep_key else _HOP_BY_HOP_AND_KEY
    for name, value in raw:
        lower = name.lower()
        if lower not in dropped:
            append((name.decode("latin-1"), value.decode("latin-1")))
        elif lower == _CONNECTION:
            connection = value if connection is None else connection + b"," + value
    if connection is not None and connection not in _PLAIN_CONNECTION:
        named = {token.decode("latin-1") for token in connection_tokens(connection)}
        return [(name, value) for name, value in headers if name.lower() not in named]
    return headers


def connection_tokens(value: bytes) -> frozenset[bytes]:
    """The lower-cased header names a `Connection` value lists, bar the ones that are
    dropped anyway (`keep-alive`, `close` and the like)."""
    tokens = {token.strip().lower() for token in value.split(b",")}
    return frozenset(tokens - _HOP_BY_HOP - {b"", b"close"})


async def forward(
    clients: UpstreamClients,
    lease: Lease,
    spec: ModelSpec,
    request: Request,
    path_qs: str,
    body: Body,
    *,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    tap: RouteTap | None = None,
) -> Response:
    """Send upstream and build the client response. Takes ownership of `lease`.

    `spec` is the lease's model (its maxConnections and timeouts); `tap` (routed requests
    only) sees every chunk and may rewrite it.
    """
    watch = DisconnectWatch.for_request(request)
    method = request.method
    # A key name on the request means keys are configured (auth.py notes it).
    keep_key = spec.forward_api_key or KEY_NAME_KEY not in request.scope
    sent = upstream_request_headers(request, keep_key=keep_key)
    size = getattr(body, "size", None)
    if size is not None:  # a streamed body the client sized: so is the upstream request
        sent.append(("Content-Length", str(size)))
    try:
        upstream = await watch.unless_gone(clients.send(lease, spec, method, path_qs, sent, body))
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
    raw = upstream.raw
    status = raw.status
    headers = response_headers(raw.raw_headers, lease.model)
    headers.extend(extra_headers)
    content_type = raw.headers.get("Content-Type", "")
    length = raw.content_length
    if method == _HEAD or status in _BODILESS:
        watch.close()
        upstream.release()  # aiohttp read no body for these: the connection is reusable
        lease.release()
        if tap is not None:
            tap.done(status)
        return Response(status, headers, _bodiless_content(status, content_type, length))
    is_sse = _EVENT_STREAM in content_type
    if length is not None and length <= _READ_WHOLE_LIMIT and not is_sse:
        return await _read_whole(upstream, lease, watch, tap, headers, content_type)
    if is_sse:
        headers.append((b"x-accel-buffering", b"no"))
    # A rewriting tap may change the size, so a tapped body is relayed chunked.
    stream_length = length if length is not None and tap is None else -1
    watch.on_gone(upstream.close)  # dropping the connection makes the server stop generating
    anthropic = is_anthropic_path(request.scope["path"])
    error_events = is_sse and stream_length < 0
    provider = _relay(upstream, lease, watch, tap, error_event=error_events, anthropic=anthropic)
    return Response(
        status, headers, StreamedContent(_content_type(content_type), provider, stream_length)
    )


async def _read_whole(
    upstream: UpstreamResponse,
    lease: Lease,
    watch: DisconnectWatch,
    tap: RouteTap | None,
    headers: list[tuple[bytes, bytes]],
    content_type: str,
) -> Response:
    """A small sized body, read whole before the response starts (so a failure is a 502)."""
    completed = False
    try:
        data = await read_body(upstream, lease.model)
        completed = True
    except SwapgateError as exc:
        if tap is not None:
            tap.done(int(exc.status))
        raise
    finally:
        _settle(watch, upstream, lease, completed=completed)
    status = upstream.raw.status
    if tap is not None:
        data = tap.chunk(data) + tap.finish()
        tap.done(status)
    return Response(status, headers, Content(_content_type(content_type), data))


async def _no_body() -> AsyncIterator[bytes]:
    """An empty body that still lets a HEAD response state the length of the GET's."""
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:  # a yield that never runs makes this an async generator function
        yield chunk


def _bodiless_content(status: int, content_type: str, length: int | None) -> Content | None:
    """What a response without a body carries: for HEAD the upstream's framing, for 204 and
    304 nothing (BlackSheep adds no content type then; Granian sends no Content-Length)."""
    if status in _BODILESS:
        return None
    # BlackSheep writes Content-Length from the length, or Transfer-Encoding: chunked for -1
    # (which Granian leaves out of a HEAD response); either way no body is sent.
    return StreamedContent(_content_type(content_type), _no_body, -1 if length is None else length)


def _content_type(value: str) -> bytes:
    return value.encode("latin-1") if value else _OCTETS


def response_headers(raw: Sequence[tuple[bytes, bytes]], model: str) -> list[tuple[bytes, bytes]]:
    """The upstream's headers minus hop-by-hop ones (and those its `Connection` names) and
    Content-Type (BlackSheep writes it from the content), plus `x-swapgate-model`."""
    headers: list[tuple[bytes, bytes]] = []
    append = headers.append
    connection: bytes | None = None
    for name, value in raw:
        lower = name.lower()
        if lower not in _HOP_BY_HOP:
            if lower != _CONTENT_TYPE:
                append((name, value))
        elif lower == _CONNECTION:
            connection = value if connection is None else connection + b"," + value
    if connection is not None and connection not in _PLAIN_CONNECTION:
        named = connection_tokens(connection)
        headers = [(name, value) for name, value in headers if name.lower() not in named]
    headers.append((b"x-swapgate-model", model.encode()))
    return headers


def _relay(
    upstream: UpstreamResponse,
    lease: Lease,
    watch: DisconnectWatch,
    tap: RouteTap | None,
    *,
    error_event: bool,
    anthropic: bool = False,
) -> Callable[[], AsyncIterator[bytes]]:
    """An async-generator *function* (what StreamedContent wants) over the upstream body.

    When the upstream fails mid-body the generator raises, which makes Granian abort the
    client connection (no final chunk, or fewer bytes than the Content-Length); with
    `error_event` (an unsized SSE stream) an error event is sent and the stream ends instead.
    """
    if tap is not None:
        return _tapped_relay(
            upstream, lease, watch, tap, error_event=error_event, anthropic=anthropic
        )

    async def provide() -> AsyncIterator[bytes]:
        completed = False
        try:
            async for chunk in iter_body(upstream, lease.model):
                yield chunk
            completed = True
        except UpstreamError as exc:
            if not watch.gone:  # else we closed it ourselves: the client left
                log.warning("%s", exc.message)
                if not error_event:
                    raise
                yield sse_error_event(exc, anthropic=anthropic)
        finally:
            _settle(watch, upstream, lease, completed=completed)

    return provide


def _settle(
    watch: DisconnectWatch, upstream: UpstreamResponse, lease: Lease, *, completed: bool
) -> None:
    """The relay is over: stop watching, hand the connection back, release the lease.

    close(), not release(), unless the body was read to its end: if the client left
    mid-stream, dropping the connection is what tells the server to stop generating.
    """
    watch.close()
    if completed:
        upstream.release()
    else:
        upstream.close()
    lease.release()


def _tapped_relay(
    upstream: UpstreamResponse,
    lease: Lease,
    watch: DisconnectWatch,
    tap: RouteTap,
    *,
    error_event: bool,
    anthropic: bool,
) -> Callable[[], AsyncIterator[bytes]]:
    """The relay for routed requests: every chunk goes through the tap on its way out."""
    inner = _relay(upstream, lease, watch, None, error_event=error_event, anthropic=anthropic)

    async def provide() -> AsyncIterator[bytes]:
        status = upstream.raw.status
        try:
            async for chunk in inner():
                out = tap.chunk(chunk)
                if out:  # an empty chunk would end the response early
                    yield out
            rest = tap.finish()
            if rest:
                yield rest
        except UpstreamError as exc:  # the response is being aborted: count it as failed
            status = int(exc.status)
            raise
        finally:
            tap.done(status)

    return provide


def sse_error_event(exc: SwapgateError, *, anthropic: bool = False) -> bytes:
    """One SSE event carrying the error: OpenAI's `data:` envelope, or for Anthropic streams
    `event: error` with Anthropic's envelope (what the Anthropic SDKs raise from)."""
    return error_event(exc, anthropic=anthropic)
