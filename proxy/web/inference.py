"""Inference handlers: pick the backend from the request's model and relay the request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from blacksheep import Request, Response

from swapgate.proxy.config.model import Config, ModelSpec
from swapgate.proxy.errors import (
    BadRequest,
    ConfigChanged,
    ModelNotFound,
    SwapgateError,
    UpstreamError,
)
from swapgate.proxy.lifecycle.lease import Lease
from swapgate.proxy.lifecycle.ticket import Ticket
from swapgate.proxy.rewrite import ModelNameRewriter
from swapgate.proxy.web.access import note_model, note_route
from swapgate.proxy.web.bodystream import BodyStream, passthrough_body
from swapgate.proxy.web.disconnect import DisconnectWatch
from swapgate.proxy.web.envelope import error_response
from swapgate.proxy.web.extract import InferenceBody, parse_inference_body, read_body
from swapgate.proxy.web.filters import upstream_body
from swapgate.proxy.web.forward import CLIENT_CLOSED, forward
from swapgate.proxy.web.gateway import Gateway
from swapgate.proxy.web.loading import loading_response, wants_loading_state
from swapgate.proxy.web.snapshot import Snapshot
from swapgate.proxy.web.tap import RouteTap
from swapgate.router import Decision, RequestFacts

# How many reloads in a row a waiting request is decided again for before it is answered 503.
DECISIONS = 3
# Every POST endpoint that names its model in the body (JSON `model` or a multipart field).
INFERENCE_PATHS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/rerank",
    "/v1/reranking",
    "/rerank",
    "/reranking",
    "/infill",
    "/completion",
    "/v1/audio/speech",
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/v1/images/generations",
    "/v1/images/edits",
)


def path_and_query(request: Request) -> str:
    query: bytes = request.scope.get("query_string", b"")
    path: str = request.scope["path"]
    return f"{path}?{query.decode('latin-1')}" if query else path


def resolve(gateway: Gateway, name: str) -> ModelSpec:
    spec = gateway.config.resolve(name)
    if spec is None:
        raise unknown_model(gateway, name)
    return spec


def unknown_model(gateway: Gateway, name: str) -> ModelNotFound:
    return gateway.model_not_found(name)


async def handle_inference(gateway: Gateway, request: Request) -> Response:
    """POST with a model in the body -> the routed model's server (started or swapped in).

    The request is decided against one snapshot of the config. If the config is reloaded
    while it waits in the queue, it is decided again against the new one, keeping its
    place in the queue (a removed model: 404 model_not_found)."""
    snapshot = gateway.snapshot_of(request)
    config = snapshot.config
    raw = await read_body(request, config.max_request_bytes, config.connections)
    content_type = request.content_type() or b""
    body = parse_inference_body(raw, content_type)
    note_model(request, body.model)
    arrived: float | None = None
    for _ in range(DECISIONS):
        try:
            return await _decide(gateway, snapshot, request, body, content_type, arrived)
        except ConfigChanged as exc:
            arrived = exc.arrived
            snapshot = gateway.redecide(request)
    msg = f"the config was reloaded {DECISIONS} times while this request waited; retry"
    raise ConfigChanged(msg)


async def _decide(
    gateway: Gateway,
    snapshot: Snapshot,
    request: Request,
    body: InferenceBody,
    content_type: bytes,
    arrived: float | None,
) -> Response:
    """Route `body` with `snapshot`, then wait for the model and relay (see _serve)."""
    path: str = request.scope["path"]
    decision = snapshot.router.match(
        RequestFacts(body.model, path, _header_facts(snapshot, request), body.parsed)
    )
    if decision is None or not gateway.may_use(request, body.model):  # as if unconfigured
        raise gateway.model_not_found(body.model, request)
    spec = snapshot.config.models[decision.model_id]
    # A rule that moved the request to another model sends that model's upstream name;
    # otherwise only useModelName changes what the client sent (llama-swap's behaviour).
    upstream_name = spec.use_model_name or (spec.id if decision.rule else body.model)
    payload = upstream_body(spec, body, content_type, upstream_name)
    extra_headers, tap = _route_extras(gateway, snapshot, decision, upstream_name, body.model)
    if decision.rule is not None:
        note_route(request, decision.rule, decision.arm)
    if gateway.inject_delay_s:
        await asyncio.sleep(gateway.inject_delay_s)

    async def relay(lease: Lease) -> Response:
        try:
            return await forward(
                gateway.clients,
                lease,
                spec,
                request,
                path_and_query(request),
                payload,
                extra_headers=extra_headers,
                tap=tap,
            )
        except UpstreamError:
            gateway.pool.upstream_failed(spec.id)  # an external server is probed again
            raise

    try:
        return await _serve(gateway, spec, request, body, relay, arrived)
    except SwapgateError as exc:
        if tap is not None and not isinstance(exc, ConfigChanged):  # not an answer yet
            tap.done(int(exc.status))
        raise


def _route_extras(
    gateway: Gateway, snapshot: Snapshot, decision: Decision, upstream_name: str, requested: str
) -> tuple[tuple[tuple[bytes, bytes], ...], RouteTap | None]:
    """For a request a rule routed: its `x-swapgate-route` header and the statistics tap."""
    if decision.rule is None:
        return (), None
    label = snapshot.router.label(decision) or decision.rule
    rewriter = None
    if decision.rewrite_response_model:  # the server may call itself anything (a GGUF path)
        rewriter = ModelNameRewriter(upstream_name, requested)
    tap = RouteTap(gateway.route_stats, decision.rule, decision.arm, rewriter)
    return ((b"x-swapgate-route", label.encode()),), tap


async def _serve(
    gateway: Gateway,
    spec: ModelSpec,
    request: Request,
    body: InferenceBody,
    relay: Callable[[Lease], Awaitable[Response]],
    arrived: float | None,
) -> Response:
    """Relay at once on the fast path, else after the wait (with loading progress if asked)."""
    ticket = gateway.pool.enqueue(spec.id, arrived)
    if isinstance(ticket, Lease):  # the fast path: no wait, no await
        return await relay(ticket)
    if ticket.future.done():  # decided at once (429, back-off): no loading stream for it
        return await relay(ticket.take())
    if spec.send_loading_state and wants_loading_state(body.parsed, request.scope["path"]):
        return loading_response(ticket, body.model, gateway.pool.events, relay)
    lease = await wait_unless_gone(ticket, request)
    if lease is None:
        return Response(CLIENT_CLOSED, None, None)
    return await relay(lease)


async def wait_unless_gone(ticket: Ticket, request: Request) -> Lease | None:
    """The ticket's lease, or None if the client hung up first (it then leaves the queue,
    so no model is started or stopped for it)."""
    watch = DisconnectWatch.for_request(request)
    try:
        return await watch.unless_gone(ticket.wait())
    finally:
        watch.close()


async def acquire_for(
    gateway: Gateway, model_id: str, request: Request, arrived: float | None = None
) -> Lease | None:
    """A lease for `model_id`: at once on the fast path, else after waiting in the queue."""
    ticket = gateway.pool.enqueue(model_id, arrived)
    return ticket if isinstance(ticket, Lease) else await wait_unless_gone(ticket, request)


def _header_facts(snapshot: Snapshot, request: Request) -> dict[str, str]:
    if not snapshot.router_reads_headers:
        return {}
    raw: list[tuple[bytes, bytes]] = request.scope["headers"]
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


async def handle_upstream(gateway: Gateway, request: Request) -> Response:
    """Any method on /upstream/{model}/{path}: straight to that model's server, no routing.

    Model ids may contain '/': the shortest prefix of path segments that names a model wins,
    as in llama-swap.
    """
    tail = request.scope["path"].removeprefix("/upstream/")
    gateway.require_upstream_model(request, tail)
    config = gateway.snapshot_of(request).config
    spec, rest = _split_model_path(gateway, config, tail)
    note_model(request, spec.id)
    if rest == "/" and not tail.endswith("/"):
        return _redirect_to_slash(request, tail)
    body = await passthrough_body(request, config.max_request_bytes, config.connections)
    arrived: float | None = None
    for _ in range(DECISIONS):
        try:
            lease = await acquire_for(gateway, spec.id, request, arrived)
            break
        except ConfigChanged as exc:  # reloaded while it waited: find the model again
            arrived = exc.arrived
            config = gateway.redecide(request).config
            gateway.require_upstream_model(request, tail)
            spec, rest = _split_model_path(gateway, config, tail)
    else:
        msg = f"the config was reloaded {DECISIONS} times while this request waited; retry"
        raise ConfigChanged(msg)
    if lease is None:
        return Response(CLIENT_CLOSED, None, None)
    query: bytes = request.scope.get("query_string", b"")
    path_qs = _raw_rest(request, tail, rest) + ("?" + query.decode("latin-1") if query else "")
    try:
        return await forward(gateway.clients, lease, spec, request, path_qs, body)
    except SwapgateError as exc:
        if not isinstance(body, BodyStream) or body.complete:
            raise
        # The rest of the body will never be read: say the connection ends with this answer
        # (without it Granian may keep the connection open, waiting for those bytes).
        response = error_response(exc)
        response.add_header(b"connection", b"close")
        return response


def _raw_rest(request: Request, tail: str, rest: str) -> str:
    """The path after the model as the client encoded it (%-escapes kept), so the server
    sees exactly what was sent; the decoded form only serves to find the model."""
    raw_path: bytes | None = request.scope.get("raw_path")
    if not raw_path:
        return rest
    raw_tail = raw_path.decode("latin-1").removeprefix("/upstream/")
    consumed = tail.count("/") - rest.count("/") + 1  # path segments that named the model
    raw_parts = raw_tail.split("/")
    if len(raw_parts) != tail.count("/") + 1:  # an encoded '/' (%2F): keep the decoded path
        return rest
    return "/" + "/".join(raw_parts[consumed:])


def _redirect_to_slash(request: Request, tail: str) -> Response:
    """/upstream/{model} -> /upstream/{model}/ so relative links in the server's pages work;
    308 keeps the method and body (llama-swap does the same)."""
    query: bytes = request.scope.get("query_string", b"")
    location = f"/upstream/{tail}/" + (f"?{query.decode('latin-1')}" if query else "")
    status = (
        HTTPStatus.MOVED_PERMANENTLY
        if request.method in ("GET", "HEAD")
        else HTTPStatus.PERMANENT_REDIRECT
    )
    return Response(int(status), [(b"location", location.encode())], None)


def _split_model_path(gateway: Gateway, config: Config, tail: str) -> tuple[ModelSpec, str]:
    parts = tail.split("/")
    for i in range(1, len(parts) + 1):
        spec = config.resolve("/".join(parts[:i]))
        if spec is not None:
            return spec, "/" + "/".join(parts[i:])
    if not tail:
        msg = "model id required in path: /upstream/{model}/{path}"
        raise BadRequest(msg)
    raise unknown_model(gateway, tail.split("/", 1)[0])
