"""Optional per-response hooks for routed requests: model-name rewriting and A/B statistics.

Requests that no rule routed get no tap at all, so the plain relay path pays nothing.
"""

from __future__ import annotations

import re
import time

from swapgate.proxy.activity.usage import FIRST_TOKEN
from swapgate.proxy.rewrite import ModelNameRewriter
from swapgate.proxy.routestats import RouteStats

_USAGE_TOKENS = re.compile(rb'"(?:completion_tokens|output_tokens)"\s*:\s*(\d+)')
_SSE_CONTENT = re.compile(rb'"(?:content|text)"\s*:\s*"(?!")')


class RouteTap:
    """Times the first token (the first chunk with answer text, else the first byte), counts
    output tokens and rewrites the model name if asked."""

    __slots__ = (
        "_arm",
        "_counted",
        "_first_at",
        "_first_byte_at",
        "_rewriter",
        "_route",
        "_started",
        "_stats",
        "_usage",
    )

    def __init__(
        self,
        stats: RouteStats,
        route: str,
        arm: str | None,
        rewriter: ModelNameRewriter | None,
    ) -> None:
        self._stats = stats
        self._route = route
        self._arm = arm
        self._rewriter = rewriter
        self._started = time.perf_counter()
        self._first_at: float | None = None  # the first chunk with answer text
        self._first_byte_at: float | None = None
        self._usage: int | None = None
        self._counted = 0

    def chunk(self, data: bytes) -> bytes:
        """Observe (and maybe rewrite) one chunk on its way to the client."""
        if self._first_at is None:
            now = time.perf_counter()
            if self._first_byte_at is None:
                self._first_byte_at = now
            if FIRST_TOKEN.search(data):  # a stream's first event often has no text yet
                self._first_at = now
        usage = _USAGE_TOKENS.findall(data)
        if usage:
            self._usage = int(usage[-1])
        else:
            # Without usage, each SSE event with text is one token (llama.cpp and vLLM stream
            # one token per event); a close estimate, replaced by usage when it comes.
            self._counted += len(_SSE_CONTENT.findall(data))
        return self._rewriter.feed(data) if self._rewriter is not None else data

    def finish(self) -> bytes:
        """Bytes still held back by the rewriter; call once at the end."""
        return self._rewriter.flush() if self._rewriter is not None else b""

    def done(self, status: int) -> None:
        """Record the request in the route statistics."""
        total = time.perf_counter() - self._started
        first = self._first_at if self._first_at is not None else self._first_byte_at
        ttft = None if first is None else first - self._started
        tokens = self._usage if self._usage is not None else (self._counted or None)
        self._stats.record(self._route, self._arm, status, ttft, total, tokens)
