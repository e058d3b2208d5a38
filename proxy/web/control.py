"""Lifecycle endpoints: the event stream (`GET /api/events`), loading a model on demand
(`POST /api/models/load/{model}`) and the per-model records `/running` shows."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from http import HTTPStatus

import orjson
from blacksheep import Request, Response, StreamedContent

from swapgate.proxy.errors import SwapgateError
from swapgate.proxy.events import Event
from swapgate.proxy.lifecycle.backend import Backend
from swapgate.proxy.lifecycle.scheduler import QueueEntry
from swapgate.proxy.lifecycle.state import BackendState
from swapgate.proxy.web.disconnect import DisconnectWatch
from swapgate.proxy.web.envelope import json_response
from swapgate.proxy.web.gateway import Gateway
from swapgate.proxy.web.inference import resolve

log = logging.getLogger("swapgate.web")

_EVENT_STREAM = b"text/event-stream"


def wall_time(monotonic_at: float) -> float:
    """A monotonic timestamp as unix time, for clients."""
    return round(time.time() - (time.monotonic() - monotonic_at), 3)


def event_json(event: Event) -> dict[str, object]:
    record = dataclasses.asdict(event)
    record["at"] = wall_time(event.at)
    return record


def sse(kind: str, payload: object) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


async def events(gateway: Gateway, request: Request) -> Response:
    """GET /api/events: a `snapshot` of every model, then each lifecycle event as it happens
    (model state, queue lengths, swaps begun and ended, memory figures), until the client
    leaves."""

    async def provide() -> AsyncIterator[bytes]:
        watch = DisconnectWatch.for_request(request)
        try:
            with gateway.pool.events.subscribe() as queue:
                yield sse("snapshot", {"models": model_records(gateway, include_stopped=True)})
                while (event := await watch.unless_gone(queue.get())) is not None:
                    yield sse(event.kind, event_json(event))
        finally:
            watch.close()

    headers = [(b"x-accel-buffering", b"no"), (b"cache-control", b"no-cache")]
    return Response(int(HTTPStatus.OK), headers, StreamedContent(_EVENT_STREAM, provide))


async def load(gateway: Gateway, request: Request) -> Response:
    """POST /api/models/load/{model}: start it through the scheduler (policies apply) and
    answer once it is ready; with `?wait=false`, answer 202 at once."""
    name = request.scope["path"].removeprefix("/api/models/load/")
    spec = resolve(gateway, name)
    query: bytes = request.scope.get("query_string", b"")
    if b"wait=false" in query.split(b"&"):
        gateway.spawn(_load_in_background(gateway, spec.id))
        state = str(gateway.pool.backends[spec.id].state)
        return json_response({"model": spec.id, "state": state}, HTTPStatus.ACCEPTED)
    await gateway.pool.load(spec.id)
    return json_response({"model": spec.id, "state": str(gateway.pool.backends[spec.id].state)})


async def _load_in_background(gateway: Gateway, model: str) -> None:
    try:
        await gateway.pool.load(model)
    except SwapgateError as exc:
        log.error("loading %s failed: %s", model, exc.message)


def model_records(gateway: Gateway, *, include_stopped: bool) -> list[dict[str, object]]:
    """What /running and the event snapshot say about each model."""
    pool = gateway.pool
    queue = {entry.model: entry for entry in pool.queue()}
    vram = gateway.gpu.used_mib_by_pid()
    records = []
    for model_id, backend in pool.backends.items():
        entry = queue.get(model_id)
        if backend.state is BackendState.STOPPED and entry is None and not include_stopped:
            continue
        records.append(_record(gateway, backend, entry, vram))
    return records


def _record(
    gateway: Gateway, backend: Backend, entry: QueueEntry | None, vram: dict[int, int]
) -> dict[str, object]:
    spec = backend.spec
    figure = gateway.pool.memory.figure(spec.id)
    failure = backend.last_failure
    retry = backend.backoff.retry_after(time.monotonic())
    record: dict[str, object] = {
        "model": spec.id,
        "state": str(backend.state),
        "cmd": backend.cmd,
        "proxy": backend.url,
        "ttl": spec.ttl_s or gateway.config.global_ttl_s,  # the TTL in effect (pool.py)
        "name": spec.name,
        "description": spec.description,
        "pid": backend.pid,
        "port": backend.port,
        "since": wall_time(backend.since),
        "inFlight": backend.in_flight,
        "external": spec.external,
        "queued": entry.queued if entry else 0,
        "queuePosition": entry.rank + 1 if entry else None,
        "waitingFor": entry.blocked if entry else None,
        "failures": backend.backoff.failures,
        "retryAfter": None if retry is None else round(retry, 1),
        "lastError": failure.message if failure else None,
        "memory": {"mib": figure.mib, "source": str(figure.source), "detail": figure.detail},
    }
    if vram and backend.pid in vram:
        record["vramMiB"] = vram[backend.pid]
    return record
