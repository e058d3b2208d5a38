"""Settings of the locust files, read from the environment; imports nothing from locust.

``SWAPGATE_MODEL`` (default ``bench``), ``SWAPGATE_MAX_TOKENS`` (unset: the server's
default), ``SWAPGATE_EMBED_MODEL`` (default: ``SWAPGATE_MODEL``) and ``SWAPGATE_AB_MODELS``
(``a:70,b:30``: model and weight pairs for the A/B mix). Kept free of locust so tests can
import it without gevent monkey-patching the test process.
"""

from __future__ import annotations

import json
import os

CHAT_PATH = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "Say something."}]


def model() -> str:
    """The model every request names."""
    return os.environ.get("SWAPGATE_MODEL", "bench")


def chat_body(model_name: str, *, stream: bool) -> str:
    """A chat completion request body."""
    body: dict[str, object] = {"model": model_name, "messages": PROMPT, "stream": stream}
    max_tokens = os.environ.get("SWAPGATE_MAX_TOKENS")
    if max_tokens:
        body["max_tokens"] = int(max_tokens)
    return json.dumps(body)


def ab_models(spec: str | None = None) -> list[tuple[str, int]]:
    """``a:70,b:30`` -> [("a", 70), ("b", 30)]; a model without a weight weighs 1."""
    text = spec if spec is not None else os.environ.get("SWAPGATE_AB_MODELS", "")
    pairs: list[tuple[str, int]] = []
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        if name:
            pairs.append((name, int(weight) if weight else 1))
    if not pairs:
        msg = "set SWAPGATE_AB_MODELS, e.g. SWAPGATE_AB_MODELS=alpha:70,bravo:30"
        raise ValueError(msg)
    return pairs
