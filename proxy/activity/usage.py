"""Token counts and speeds from what a backend sends back, without parsing the body.

Backends report usage in the answer itself: OpenAI-style `usage` (llama-server, vLLM, TGI,
OpenAI), Anthropic `usage` (in `message_start` and `message_delta` events of a stream),
llama-server `timings` (prompt_n, cache_n, predicted_n and their speeds). UsageScanner is fed
every body chunk on its way to the client: a chunk costs two substring searches, and only
the chunks that name `usage` or `timings` are kept (a bounded slice of each). The numbers
are read from those slices once, when the request ends.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

_USAGE = b'"usage"'
_TIMINGS = b'"timings"'
_SLICE = 4096  # bytes kept from each marker on: a usage or timings object fits easily
_KEPT = 4  # slices kept: Anthropic sends usage twice, llama-server usage and timings once
_NUMBER = rb'"%s"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)'
# Text of the answer: a non-empty string under one of these names (OpenAI and llama-server
# `content`, reasoning models' `reasoning_content`, Anthropic `text` and `thinking`). A
# stream's first event often carries none (`"role":"assistant","content":""`).
FIRST_TOKEN = re.compile(rb'"(?:content|reasoning_content|text|thinking)"\s*:\s*"(?!")')
# The progress events swapgate itself streams while a model loads (web/loading.py) are not
# the model's answer.
LOADING_EVENT = b'"id":"swapgate-loading"'


# The JSON names read, and what each is called here. One alternation reads them all in a
# single pass over a kept slice.
_NAMES = {
    b"prompt_tokens": "prompt",
    b"input_tokens": "input",  # Anthropic: without the cached part
    b"completion_tokens": "completion",
    b"output_tokens": "output",
    b"cached_tokens": "cached",  # OpenAI and vLLM: usage.prompt_tokens_details
    b"cache_read_input_tokens": "cache_read",  # Anthropic
    b"prompt_n": "prompt_n",  # llama-server timings: prompt tokens evaluated
    b"cache_n": "cache_n",  # llama-server timings: prompt tokens reused from the cache
    b"predicted_n": "predicted_n",
    b"prompt_per_second": "prompt_speed",
    b"predicted_per_second": "predicted_speed",
}
_FIGURE = re.compile(_NUMBER % (b"(" + b"|".join(_NAMES) + b")"))


@dataclass(frozen=True, slots=True)
class Usage:
    """What the backend reported; None where it said nothing."""

    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    generated_tokens: int | None = None
    prefill_tokens_per_s: float | None = None
    decode_tokens_per_s: float | None = None


NO_USAGE = Usage()


class UsageScanner:
    """Keeps the chunks of one response that carry usage figures, and notes when the first
    one with answer text went out (`first_token_at`, a perf_counter time)."""

    __slots__ = ("_slices", "first_token_at")

    def __init__(self) -> None:
        self._slices: list[bytes] = []
        self.first_token_at: float | None = None

    def feed(self, data: bytes) -> None:
        """Look at one body chunk (cheap when it carries no figures)."""
        if self.first_token_at is None and FIRST_TOKEN.search(data) and LOADING_EVENT not in data:
            self.first_token_at = time.perf_counter()
        usage = data.rfind(_USAGE)
        timings = data.rfind(_TIMINGS)
        if usage < 0 and timings < 0:
            return
        start = min(pos for pos in (usage, timings) if pos >= 0)
        piece = data[start : start + _SLICE] if len(data) - start > _SLICE else data[start:]
        if len(self._slices) >= _KEPT:
            self._slices[-1] = piece  # keep the first ones and the latest
        else:
            self._slices.append(piece)

    def usage(self) -> Usage:
        """The figures from every kept slice, later ones overriding earlier ones."""
        if not self._slices:
            return NO_USAGE
        found: dict[str, float] = {}
        for piece in self._slices:
            for name, value in _FIGURE.findall(piece):
                found[_NAMES[name]] = float(value)
        return _usage_from(found)


def _usage_from(found: dict[str, float]) -> Usage:
    """OpenAI names first, then Anthropic's, then llama-server's timings.

    Prompt tokens include the cached ones, as OpenAI counts them: Anthropic's input_tokens
    leaves the cache reads out, so they are added back."""
    cached = _first(found, "cached", "cache_read", "cache_n")
    prompt = _first(found, "prompt")
    if prompt is None and "input" in found:
        prompt = int(found["input"]) + int(found.get("cache_read", 0))
    if prompt is None and "prompt_n" in found:
        prompt = int(found["prompt_n"]) + int(found.get("cache_n", 0))
    return Usage(
        prompt_tokens=prompt,
        cached_tokens=cached,
        generated_tokens=_first(found, "completion", "output", "predicted_n"),
        prefill_tokens_per_s=_speed(found.get("prompt_speed")),
        decode_tokens_per_s=_speed(found.get("predicted_speed")),
    )


def _first(found: dict[str, float], *names: str) -> int | None:
    for name in names:
        if name in found:
            return int(found[name])
    return None


def _speed(value: float | None) -> float | None:
    return None if value is None or value <= 0 else round(value, 2)
