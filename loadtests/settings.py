"""Settings of the locust files, read from the environment; imports nothing from locust.

``SWAPGATE_MODEL`` (default ``bench``; ``chat`` for the A/B mix, the routed name of
``examples/ab.yaml``), ``SWAPGATE_MAX_TOKENS`` (unset: the server's default) and
``SWAPGATE_EMBED_MODEL`` (default: ``SWAPGATE_MODEL``). Kept free of locust so tests can
import it without gevent monkey-patching the test process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

CHAT_PATH = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "Say something."}]


ROUTE_HEADER = "x-swapgate-route"
MODEL_HEADER = "x-swapgate-model"


def model(default: str = "bench") -> str:
    """The model every request names."""
    return os.environ.get("SWAPGATE_MODEL", default)


def chat_body(model_name: str, *, stream: bool) -> str:
    """A chat completion request body."""
    body: dict[str, object] = {"model": model_name, "messages": PROMPT, "stream": stream}
    max_tokens = os.environ.get("SWAPGATE_MAX_TOKENS")
    if max_tokens:
        body["max_tokens"] = int(max_tokens)
    return json.dumps(body)


def arm_of(headers: Mapping[str, str]) -> str:
    """The arm a response came from: swapgate's ``x-swapgate-route`` (``chat-ab/variant-a``),
    else ``unrouted <model>`` from ``x-swapgate-model``, else ``unrouted``."""
    route = headers.get(ROUTE_HEADER)
    if route:
        return route
    served = headers.get(MODEL_HEADER)
    return f"unrouted {served}" if served else "unrouted"
