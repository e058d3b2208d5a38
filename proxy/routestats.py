"""RouteStats: per rule and variant request statistics for A/B comparisons. Pure, stdlib only.

Recording is O(1) (counters plus bounded deques); percentiles are computed only in snapshot().
Meant for one event loop thread: nothing here locks.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus

# Recent requests kept per rule and per variant: enough for a stable p95, bounded memory.
DEFAULT_WINDOW = 1024
# Latencies are reported in seconds to 0.1 ms: finer digits are clock noise.
SECONDS_DIGITS = 4

Number = float | int | None


class _Bucket:
    """Counters and recent latency samples for one rule or one variant."""

    __slots__ = ("errors", "requests", "token_rates", "totals", "ttfts")

    def __init__(self, window: int) -> None:
        self.requests = 0
        self.errors: Counter[int] = Counter()
        self.ttfts: deque[float] = deque(maxlen=window)
        self.totals: deque[float] = deque(maxlen=window)
        # (output tokens, seconds spent generating them) for the throughput figure.
        self.token_rates: deque[tuple[int, float]] = deque(maxlen=window)

    def add(self, status: int, ttft_s: float | None, total_s: float, tokens: int | None) -> None:
        self.requests += 1
        if status >= HTTPStatus.BAD_REQUEST:
            self.errors[status] += 1
        if ttft_s is not None:
            self.ttfts.append(ttft_s)
        self.totals.append(total_s)
        if tokens is not None:
            # Generation time excludes the wait for the first token when it is known.
            self.token_rates.append((tokens, total_s - ttft_s if ttft_s is not None else total_s))

    def summary(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "errors": {str(status): count for status, count in sorted(self.errors.items())},
            "ttft_s": _percentiles(self.ttfts),
            "total_s": _percentiles(self.totals),
            "output_tokens_per_s": _throughput(self.token_rates),
        }


class _RuleStats:
    """A rule's own bucket plus one bucket per variant that served it."""

    __slots__ = ("arms", "bucket")

    def __init__(self, window: int) -> None:
        self.bucket = _Bucket(window)
        self.arms: dict[str, _Bucket] = {}


class RouteStats:
    """Statistics per rule and per split variant since the last reset (or start)."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, window: int = DEFAULT_WINDOW
    ) -> None:
        self._clock = clock
        self._window = window
        self._rules: dict[str, _RuleStats] = {}
        self._since = clock()

    def record(
        self,
        route: str,
        arm: str | None,
        status: int,
        ttft_s: float | None,
        total_s: float,
        output_tokens: int | None,
    ) -> None:
        """Count one finished request under its rule and, for a split, its variant."""
        rule = self._rules.get(route)
        if rule is None:
            rule = self._rules[route] = _RuleStats(self._window)
        rule.bucket.add(status, ttft_s, total_s, output_tokens)
        if arm is not None:
            bucket = rule.arms.get(arm)
            if bucket is None:
                bucket = rule.arms[arm] = _Bucket(self._window)
            bucket.add(status, ttft_s, total_s, output_tokens)

    def snapshot(self) -> dict[str, object]:
        """JSON-ready figures: per rule its totals plus one entry per variant."""
        routes: dict[str, object] = {}
        for name, rule in sorted(self._rules.items()):
            entry = rule.bucket.summary()
            entry["arms"] = {arm: bucket.summary() for arm, bucket in sorted(rule.arms.items())}
            routes[name] = entry
        return {"since": _iso(self._since), "routes": routes}

    def reset(self) -> None:
        """Forget everything recorded; `since` becomes now."""
        self._rules.clear()
        self._since = self._clock()


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _percentiles(samples: deque[float]) -> dict[str, Number]:
    """Nearest-rank p50 and p95 in seconds, to 0.1 ms (None when empty): no interpolation,
    always an observed value."""
    if not samples:
        return {"p50": None, "p95": None}
    ordered = sorted(samples)
    return {"p50": _rank(ordered, 0.50), "p95": _rank(ordered, 0.95)}


def _rank(ordered: list[float], fraction: float) -> float:
    return round(ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)], SECONDS_DIGITS)


def _throughput(rates: deque[tuple[int, float]]) -> float | None:
    """Tokens over generation seconds across the window, so long answers weigh more."""
    seconds = sum(duration for _, duration in rates)
    if seconds <= 0:
        return None
    return sum(tokens for tokens, _ in rates) / seconds
