"""Management endpoints: model list and retrieve, running backends, unload, health and logs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from http import HTTPStatus

from blacksheep import Request, Response, StreamedContent

from swapgate.proxy.config.model import ModelSpec
from swapgate.proxy.errors import MethodNotAllowed
from swapgate.proxy.loghub import PROXY_SOURCE
from swapgate.proxy.web.control import model_records
from swapgate.proxy.web.disconnect import DisconnectWatch
from swapgate.proxy.web.envelope import json_response, text_response
from swapgate.proxy.web.gateway import Gateway
from swapgate.proxy.web.inference import resolve, unknown_model
from swapgate.proxy.web.methods import not_allowed_response

UPSTREAM_SOURCE = "upstream"  # llama-swap's name for "every model's output"


def _model_record(spec: ModelSpec, model_id: str, created: int) -> dict[str, object]:
    record: dict[str, object] = {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "swapgate",
    }
    if spec.name.strip():
        record["name"] = spec.name.strip()
    if spec.description.strip():
        record["description"] = spec.description.strip()
    if spec.metadata:
        record["meta"] = {"llamaswap": dict(spec.metadata)}
    return record


async def list_models(gateway: Gateway, request: Request) -> Response:
    """GET /v1/models: OpenAI's list; unlisted models and those the key may not use hidden,
    aliases on request."""
    created = int(time.time())
    data: list[dict[str, object]] = []
    for model_id, spec in gateway.config.models.items():
        if spec.unlisted or not gateway.may_use(request, model_id):
            continue
        data.append(_model_record(spec, model_id, created))
        if gateway.config.include_aliases_in_list:
            data.extend(_model_record(spec, alias, created) for alias in spec.aliases)
    data.sort(key=lambda record: str(record["id"]))
    return json_response({"object": "list", "data": data})


async def retrieve_model(gateway: Gateway, request: Request) -> Response:
    """GET /v1/models/{model}: OpenAI's retrieve. The record GET /v1/models lists for that id
    or alias (an alias gets its own record, listed or not); unlisted models answer by name
    too; anything else is 404 model_not_found. Ids may contain '/'."""
    name = request.scope["path"].removeprefix("/v1/models/")
    spec = gateway.config.resolve(name)
    if spec is None or not gateway.may_use(request, name):  # hidden from a key as if absent
        raise gateway.model_not_found(name, request)
    return json_response(_model_record(spec, name, int(time.time())))


async def running(gateway: Gateway, _request: Request) -> Response:
    """GET /running: llama-swap's shape (every model not stopped, plus stopped ones with
    queued requests) with pid, port, since (unix time), inFlight, queued, queuePosition,
    waitingFor, failures, retryAfter, lastError, memory and, on a GPU machine, vramMiB."""
    return json_response({"running": model_records(gateway, include_stopped=False)})


async def gpu(gateway: Gateway, _request: Request) -> Response:
    """GET /api/gpu: each GPU's memory and which model holds how much; degrades cleanly."""
    owners = {b.pid: model for model, b in gateway.pool.running().items() if b.pid is not None}
    devices = [
        {
            "index": d.index,
            "name": d.name,
            "totalMiB": d.total_mib,
            "usedMiB": d.used_mib,
            "freeMiB": d.free_mib,
            "processes": [
                {"pid": p.pid, "usedMiB": p.used_mib, "model": owners.get(p.pid)}
                for p in d.processes
            ],
        }
        for d in gateway.gpu.devices()
    ]
    return json_response(
        {"available": gateway.gpu.available, "reason": gateway.gpu.reason, "devices": devices}
    )


async def unload_all(gateway: Gateway, _request: Request) -> Response:
    """POST /api/models/unload: stop every model (in-flight requests finish first)."""
    await gateway.pool.unload(None)
    return json_response({"msg": "ok"})


async def unload_all_legacy(gateway: Gateway, request: Request) -> Response:
    """GET /unload (llama-swap's older endpoint): unloads every model only for a request that
    carries an API key (`guarded` has checked it) and does not come from a web page of another
    site; anything else, HEAD included, is 405 pointing to POST /api/models/unload: a GET any
    page can make (an image, a link) must not change state."""
    if request.method != "GET" or not gateway.keyring or _cross_site(request):
        msg = (
            "GET /unload changes state, so it only works with an API key and not from a web "
            "page of another site — use POST /api/models/unload"
        )
        return not_allowed_response(MethodNotAllowed(msg, allow=("POST",)), "/unload")
    await gateway.pool.unload(None)
    return text_response("OK")


def _cross_site(request: Request) -> bool:
    """True for a browser request made by a page of another origin (Fetch Metadata): with a
    key the browser keeps (Basic auth) it would otherwise unload from an <img> tag."""
    site = request.get_first_header(b"sec-fetch-site")
    return site is not None and site not in (b"same-origin", b"none")


async def unload_one(gateway: Gateway, request: Request) -> Response:
    """POST /api/models/unload/{model}: stop one model (id or alias)."""
    name = request.scope["path"].removeprefix("/api/models/unload/")
    spec = resolve(gateway, name)
    await gateway.pool.unload(spec.id)
    return text_response("OK")


async def route_stats(gateway: Gateway, _request: Request) -> Response:
    """GET /api/routes: per rule and variant statistics since the last reset."""
    return json_response(gateway.route_stats.snapshot())


async def reset_route_stats(gateway: Gateway, _request: Request) -> Response:
    """POST /api/routes/reset: start the statistics afresh."""
    gateway.route_stats.reset()
    return json_response({"msg": "ok"})


async def health(_gateway: Gateway, _request: Request) -> Response:
    return text_response("OK")


async def logs(gateway: Gateway, _request: Request) -> Response:
    """GET /logs: recent lines from swapgate and every model, oldest first."""
    lines = gateway.hub.tail()
    return text_response("".join(line + "\n" for line in lines))


async def logs_stream(gateway: Gateway, request: Request) -> Response:
    """GET /logs/stream[/{source}]: history, then live lines until the client leaves.

    `source` is `proxy`, `upstream` (every model) or a model id; `?no-history` skips history.
    """
    name = request.scope["path"].removeprefix("/logs/stream").strip("/")
    source: str | None = None
    if name == UPSTREAM_SOURCE:
        source = None
    elif name:
        source = name if name == PROXY_SOURCE else resolve_source(gateway, name)
    with_history = b"no-history" not in request.scope.get("query_string", b"")

    async def provide() -> AsyncIterator[bytes]:
        watch = DisconnectWatch.for_request(request)
        try:
            async with gateway.hub.subscribe(source) as queue:
                if with_history:
                    history = gateway.hub.tail(source)
                    if history:
                        yield "".join(line + "\n" for line in history).encode()
                while (line := await watch.unless_gone(queue.get())) is not None:
                    yield line.encode()
        finally:
            watch.close()

    headers = [(b"x-accel-buffering", b"no"), (b"cache-control", b"no-cache")]
    return Response(
        int(HTTPStatus.OK), headers, StreamedContent(b"text/plain; charset=utf-8", provide)
    )


def resolve_source(gateway: Gateway, name: str) -> str:
    spec = gateway.config.resolve(name)
    if spec is None:
        raise unknown_model(gateway, name)
    return spec.id
