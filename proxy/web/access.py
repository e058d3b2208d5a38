"""The access log: one info line per HTTP request on logger `swapgate.access`, once it ends.

A tiny ASGI middleware around the BlackSheep app (build_app adds it). It only watches what
the app sends: status and headers from `http.response.start`, a byte counter and two clock
reads from `http.response.body`. The line is written when the app returns: the response is
complete, the stream ended, or the client left. It adds no await, no task and, per chunk,
nothing beyond the counter; while the log is off a request costs two checks.

    POST /v1/chat/completions key=alice model=chat backend=variant-a route=chat-ab/variant-a
        status=200 ttfb_ms=101.3 duration_ms=1120.4 bytes=5210      (one line in the log)

`key` is the name of the request's API key (note_key; `apiKeys[0]` for apiKeys, never the key
itself), `model` is the name the client asked for (handlers record it with note_model), `backend` the
model that served it (`x-swapgate-model`), `route` the rule and variant (`x-swapgate-route`);
`-` where there is none. `ttfb_ms` runs from the request's arrival to the first body bytes
handed to the server (a stream's first event), `duration_ms` to the last, `bytes` counts body
bytes. A response that did not end normally (aborted mid-body) gets ` incomplete` appended.
Values that could break the line (spaces, control characters) are written JSON-quoted.

Off: disable() (what `--no-access-log` calls), or a swapgate log level above info.

The same middleware feeds the activity log: for the paths a `RequestSink` wants (inference
and `/upstream`), each body chunk also goes through a UsageScanner (two substring searches),
and the sink gets the finished exchange, whether or not the line is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

from swapgate.proxy.activity.usage import UsageScanner

ACCESS_LOGGER = "swapgate.access"
MODEL_KEY = "swapgate.model"  # where note_model leaves the asked model name in the scope
KEY_NAME_KEY = "swapgate.key"  # where note_key leaves the API key's name
ROUTE_KEY = "swapgate.route"  # where note_route leaves (rule, arm)
log = logging.getLogger(ACCESS_LOGGER)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BACKEND_HEADER = b"x-swapgate-model"
_ROUTE_HEADER = b"x-swapgate-route"
_BODY = "http.response.body"
_START = "http.response.start"
_enabled = True  # disable() clears it


def disable() -> None:
    """Turn the access log off for this process (`swapgate --no-access-log`).

    A flag of this module rather than `Logger.disabled`: Granian's start runs
    logging.config.dictConfig with disable_existing_loggers=False, which sets `disabled` back
    to False on every existing logger."""
    global _enabled  # one process-wide switch, set once at startup
    _enabled = False


class HasScope(Protocol):
    """What note_model takes: a BlackSheep Request (or anything else holding the scope)."""

    @property
    def scope(self) -> Any: ...


def note_model(request: HasScope, model: str) -> None:
    """Record the model the client asked for, for this request's access line (one dict
    store; the scope is the one this middleware was called with)."""
    request.scope[MODEL_KEY] = model


def note_key(request: HasScope, name: str) -> None:
    """Record the name of the request's API key, for its access line."""
    request.scope[KEY_NAME_KEY] = name


def note_route(request: HasScope, rule: str, arm: str | None) -> None:
    """Record the rule (and split variant) that routed the request, for its record."""
    request.scope[ROUTE_KEY] = (rule, arm or "")


class RequestSink(Protocol):
    """Who is told of finished requests (the activity recorder)."""

    def wants(self, path: str) -> bool:
        """Whether requests to `path` are recorded."""
        ...

    def finish(self, scope: Scope, exchange: Exchange) -> None:
        """One request ended; `exchange` says how (read it now, it is not kept)."""
        ...


class AccessLog:
    """ASGI middleware that writes one access line per HTTP request and hands the requests
    `sink` wants to it; `app` is the wrapped app."""

    __slots__ = ("app", "sink")

    def __init__(self, app: ASGIApp, sink: RequestSink | None = None) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sink = self.sink
        if sink is not None and not sink.wants(scope["path"]):
            sink = None
        logged = _enabled and log.isEnabledFor(logging.INFO)
        if sink is None and not logged:
            await self.app(scope, receive, send)
            return
        exchange = Exchange(send, UsageScanner() if sink is not None else None)
        try:
            await self.app(scope, receive, exchange.send)
        finally:  # also when the app raised or was cancelled: the request still gets its line
            # Once the server has the app's return: it completes the response only then, and
            # the line and the record (some 30 us) would otherwise delay it.
            asyncio.get_running_loop().call_soon(_finish, scope, exchange, logged, sink)


def _finish(scope: Scope, exchange: Exchange, logged: bool, sink: RequestSink | None) -> None:
    """Write the request's line and hand it to the sink (a loop callback of its own)."""
    if logged:
        exchange.write(scope)
    if sink is not None:
        sink.finish(scope, exchange)


class Exchange:
    """What one request's response has sent so far."""

    __slots__ = (
        "_send",
        "bytes_sent",
        "ended",
        "first_at",
        "headers",
        "scanner",
        "started",
        "status",
    )

    def __init__(self, send: Send, scanner: UsageScanner | None = None) -> None:
        self._send = send
        self.started = time.perf_counter()
        self.first_at: float | None = None
        self.ended: float | None = None
        self.status: int | None = None
        self.headers: Iterable[tuple[bytes, bytes]] = ()
        self.bytes_sent = 0
        self.scanner = scanner

    def send(self, message: Message) -> Awaitable[None]:
        """Note what `message` says and pass it on. Returns the server's awaitable itself:
        no coroutine of its own, so no extra frame per chunk."""
        if message["type"] == _BODY:
            body = message.get("body", b"")
            self.bytes_sent += len(body)
            if self.scanner is not None and body:
                self.scanner.feed(body)
            if not message.get("more_body", False):
                self.ended = time.perf_counter()
                if self.first_at is None:
                    self.first_at = self.ended
            elif self.first_at is None:
                self.first_at = time.perf_counter()
        elif message["type"] == _START:
            self.status = message["status"]
            self.headers = message.get("headers", ())
        return self._send(message)

    def write(self, scope: Scope) -> None:
        """Log the line (once the logger is known to be on for INFO)."""
        end = self.ended if self.ended is not None else time.perf_counter()
        backend = route = "-"
        for name, value in self.headers:
            if name == _BACKEND_HEADER:
                backend = value.decode("latin-1")
            elif name == _ROUTE_HEADER:
                route = value.decode("latin-1")
        ttfb = "-" if self.first_at is None else f"{(self.first_at - self.started) * 1000:.1f}"
        log.info(
            "%s %s key=%s model=%s backend=%s route=%s status=%s ttfb_ms=%s duration_ms=%.1f "
            "bytes=%d%s",
            scope.get("method", "-"),
            _field(scope.get("path", "-")),
            _field(scope.get(KEY_NAME_KEY, "-")),
            _field(scope.get(MODEL_KEY, "-")),
            _field(backend),
            _field(route),
            "-" if self.status is None else self.status,
            ttfb,
            (end - self.started) * 1000,
            self.bytes_sent,
            "" if self.ended is not None else " incomplete",
        )


def _field(value: object) -> str:
    """`value` as one token of the line: as is when safe, else JSON-quoted."""
    text = str(value)
    if text and text.isprintable() and " " not in text:
        return text
    return json.dumps(text)
