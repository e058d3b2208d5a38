"""Shared state of one fake upstream process: options, counters and small request helpers."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from http import HTTPStatus

import orjson
from aiohttp import web

from swapgate.bench.fake_upstream.options import Options

JSON_TYPE = "application/json"
MAX_TOKEN_KEYS = ("max_tokens", "max_completion_tokens", "n_predict")


@dataclass(slots=True)
class Stats:
    """Counters served at ``/debug/stats``; ``/debug/*`` requests are not counted."""

    requests: int = 0
    connections_opened: int = 0
    streams_started: int = 0
    streams_completed: int = 0
    streams_cancelled: int = 0


@dataclass(slots=True)
class Context:
    """Options plus mutable counters, shared by every handler of one process.

    All handlers run on one event loop thread, so the counters need no lock.
    """

    opts: Options
    stats: Stats = field(default_factory=Stats)
    pid: int = field(default_factory=os.getpid)
    ready_at: float = 0.0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.ready_at = time.monotonic() + self.opts.startup_delay

    def loading(self) -> bool:
        """True while the simulated model load (``--startup-delay``) is still running."""
        return self.ready_at > 0 and time.monotonic() < self.ready_at

    def new_id(self, prefix: str) -> str:
        """A short id unique within this process, e.g. ``chatcmpl-1a2b-7``."""
        return f"{prefix}-{self.pid:x}-{next(self._ids)}"

    def token_budget(self, body: dict[str, object]) -> tuple[int, bool]:
        """Tokens to generate and whether a request limit (not ``--tokens``) cut them short."""
        limit = self.opts.tokens
        for key in MAX_TOKEN_KEYS:
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit:
                return value, True
        return limit, False


def json_response(data: object, status: int = HTTPStatus.OK) -> web.Response:
    """An ``application/json`` response encoded with orjson."""
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON_TYPE)


async def read_json_object(request: web.Request) -> dict[str, object]:
    """The request body as a JSON object, or raise a 400 with an OpenAI-shaped error."""
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        msg = f"request body is not valid JSON: {exc}"
        raise _bad_request(msg) from exc
    if not isinstance(body, dict):
        msg = "request body must be a JSON object"
        raise _bad_request(msg)
    return body


def _bad_request(message: str) -> web.HTTPBadRequest:
    payload = {"error": {"code": 400, "message": message, "type": "invalid_request_error"}}
    return web.HTTPBadRequest(body=orjson.dumps(payload), content_type=JSON_TYPE)


def request_model(body: dict[str, object], default: str) -> str:
    """The ``model`` the client sent, or ``default`` when it sent none."""
    model = body.get("model")
    return model if isinstance(model, str) and model else default


def count_words(value: object) -> int:
    """Whitespace-separated words in all strings nested in ``value``: a stand-in token count."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(count_words(item) for key, item in value.items() if key in _TEXT_KEYS)
    return 0


# Keys whose values hold prompt text in OpenAI and Anthropic request bodies.
_TEXT_KEYS = frozenset({"messages", "content", "text", "prompt", "input", "system"})


def prompt_tokens(body: dict[str, object]) -> int:
    """A deterministic prompt token count (at least 1) for ``usage`` fields."""
    return max(1, count_words(body))
