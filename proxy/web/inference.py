"""Inference handlers: pick the backend from the request's model and relay the request."""

from __future__ import annotations

import asyncio

from blacksheep import Request, Response

from proxy.config.model import ModelSpec
from proxy.errors import BadRequest, ModelNotFound
from proxy.web.extract import parse_inference_body, read_body, with_model
from proxy.web.forward import forward
from proxy.web.gateway import Gateway

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
    known = ", ".join(sorted(gateway.config.models)) or "(none configured)"
    return ModelNotFound(
        f"model {name!r} is not configured; known models: {known} (GET /v1/models lists them)"
    )


async def handle_inference(gateway: Gateway, request: Request) -> Response:
    """POST with a model in the body -> that model's server (started or swapped in first)."""
    raw = await read_body(request, gateway.config.max_request_bytes)
    content_type = request.content_type() or b""
    body = parse_inference_body(raw, content_type)
    spec = resolve(gateway, body.model)
    payload = raw
    if spec.use_model_name and spec.use_model_name != body.model:
        payload = with_model(body, content_type, spec.use_model_name)
    if gateway.inject_delay_s:
        await asyncio.sleep(gateway.inject_delay_s)
    lease = await gateway.pool.acquire(spec.id)
    return await forward(
        gateway.clients, lease, spec.max_connections, request, path_and_query(request), payload
    )


async def handle_upstream(gateway: Gateway, request: Request) -> Response:
    """Any method on /upstream/{model}/{path}: straight to that model's server, no routing.

    Model ids may contain '/': the shortest prefix of path segments that names a model wins,
    as in llama-swap.
    """
    tail = request.scope["path"].removeprefix("/upstream/")
    spec, rest = _split_model_path(gateway, tail)
    raw = await read_body(request, gateway.config.max_request_bytes)
    lease = await gateway.pool.acquire(spec.id)
    query: bytes = request.scope.get("query_string", b"")
    path_qs = rest + ("?" + query.decode("latin-1") if query else "")
    return await forward(
        gateway.clients, lease, spec.max_connections, request, path_qs, raw or None
    )


def _split_model_path(gateway: Gateway, tail: str) -> tuple[ModelSpec, str]:
    parts = tail.split("/")
    for i in range(1, len(parts) + 1):
        spec = gateway.config.resolve("/".join(parts[:i]))
        if spec is not None:
            return spec, "/" + "/".join(parts[i:])
    if not tail:
        msg = "model id required in path: /upstream/{model}/{path}"
        raise BadRequest(msg)
    raise unknown_model(gateway, tail.split("/", 1)[0])
