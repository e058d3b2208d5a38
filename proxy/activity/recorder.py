"""Recorder: turns each finished inference exchange into a RequestRecord and publishes it.

The access-log middleware (proxy/web/access.py) calls it once per request it wants; this is
the only work recording adds to a request: building one frozen record and one publish on
the event bus, after the last byte went out. The activity log, the store and the metrics
are subscribers.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Collection

from swapgate.proxy.activity.record import RequestRecord
from swapgate.proxy.events import Event, RequestFinished
from swapgate.proxy.web.access import KEY_NAME_KEY, MODEL_KEY, ROUTE_KEY, Exchange, Scope

UPSTREAM_PREFIX = "/upstream/"
UPSTREAM_ENDPOINT = "/upstream"
_BACKEND_HEADER = b"x-swapgate-model"
_CONTENT_TYPE = b"content-type"
_EVENT_STREAM = b"text/event-stream"
_SERVER_ERROR = 500  # the app raised before answering (Granian answers 500 then)


class Recorder:
    """The RequestSink for inference paths and `/upstream/...`."""

    __slots__ = ("_ids", "_paths", "_publish")

    def __init__(
        self, paths: Collection[str], publish: Callable[[Event], None], first_id: int = 1
    ) -> None:
        self._paths = frozenset(paths)
        self._publish = publish
        self._ids = itertools.count(first_id)

    def start_ids_at(self, first_id: int) -> None:
        """Continue numbering after the records a store already holds."""
        self._ids = itertools.count(first_id)

    def wants(self, path: str) -> bool:
        return path in self._paths or path.startswith(UPSTREAM_PREFIX)

    def finish(self, scope: Scope, exchange: Exchange) -> None:
        now = time.perf_counter()
        end = exchange.ended if exchange.ended is not None else now
        duration = end - exchange.started
        first = exchange.first_at
        if exchange.scanner is not None and exchange.scanner.first_token_at is not None:
            first = exchange.scanner.first_token_at  # past events that carry no text yet
        ttft = None if first is None else first - exchange.started
        backend = ""
        stream = False
        for name, value in exchange.headers:
            if name == _BACKEND_HEADER:
                backend = value.decode("latin-1")
            elif name == _CONTENT_TYPE and _EVENT_STREAM in value:
                stream = True
        path: str = scope["path"]
        upstream = path.startswith(UPSTREAM_PREFIX)
        rule, arm = scope.get(ROUTE_KEY, ("", ""))
        usage = exchange.scanner.usage() if exchange.scanner is not None else None
        generated = usage.generated_tokens if usage else None
        decode = usage.decode_tokens_per_s if usage else None
        if decode is None and stream and generated and ttft is not None and duration > ttft:
            # No speed reported: tokens over the time between the first and the last event.
            decode = round(generated / (duration - ttft), 2)
        record = RequestRecord(
            id=next(self._ids),
            time=round(time.time() - (now - exchange.started), 3),
            method=scope.get("method", ""),
            path=path,
            endpoint=UPSTREAM_ENDPOINT if upstream else path,
            model=scope.get(MODEL_KEY, "") or "",
            backend=backend,
            route=rule,
            arm=arm,
            key=scope.get(KEY_NAME_KEY, "") or "",
            status=exchange.status if exchange.status is not None else _SERVER_ERROR,
            ttft_s=None if ttft is None else round(ttft, 4),
            duration_s=round(duration, 4),
            bytes=exchange.bytes_sent,
            stream=stream,
            complete=exchange.ended is not None,
            prompt_tokens=usage.prompt_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else None,
            generated_tokens=generated,
            prefill_tokens_per_s=usage.prefill_tokens_per_s if usage else None,
            decode_tokens_per_s=decode,
        )
        self._publish(RequestFinished(record, time.monotonic()))
