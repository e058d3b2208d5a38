"""Per-request metrics: counts by status, latency histograms and token counters.

`observe()` runs once per finished request, on the event loop: it looks its children up in
two dicts keyed by label tuples instead of calling prometheus_client's `labels()` (which
validates and hashes its arguments every time), so recording costs a few dict lookups and
a handful of locked additions.
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram

from swapgate.proxy.activity.record import RequestRecord

# Seconds: 10 ms (a cached answer) to 10 min (a long generation or a slow cold start).
LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
# Clients choose the model name of a request nothing served (a 404, a refused key): past
# this many distinct names they share one label value, so nobody can grow the series
# without bound by sending made-up names.
UNSERVED_NAMES = 100
OTHER_MODEL = "_other"
_ROUTED = ("model", "route", "arm")


class _Series(NamedTuple):
    """The children of one (model, route, arm)."""

    ttft: Histogram
    duration: Histogram
    prompt: Counter
    cached: Counter
    generated: Counter


class RequestMetrics:
    """The request-level series, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "swapgate_requests_total",
            "Finished inference requests by served model, route rule, arm, endpoint and status.",
            ("model", "route", "arm", "endpoint", "status"),
            registry=registry,
        )
        self.ttft = Histogram(
            "swapgate_time_to_first_token_seconds",
            "Arrival to the first body bytes (a stream's first event) of answers below 400.",
            _ROUTED,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "swapgate_request_duration_seconds",
            "Arrival to the last body bytes of answers below 400.",
            _ROUTED,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.prompt = Counter(
            "swapgate_prompt_tokens_total",
            "Prompt tokens the backends reported.",
            _ROUTED,
            registry=registry,
        )
        self.cached = Counter(
            "swapgate_cached_tokens_total",
            "Prompt tokens the backends reported as served from their prompt cache.",
            _ROUTED,
            registry=registry,
        )
        self.generated = Counter(
            "swapgate_generated_tokens_total",
            "Generated tokens the backends reported.",
            _ROUTED,
            registry=registry,
        )
        self._counts: dict[tuple[str, str, str, str, int], Counter] = {}
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._unserved: set[str] = set()

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request."""
        model = record.backend or self._unserved_name(record.model)
        key = (model, record.route, record.arm, record.endpoint, record.status)
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = self.requests.labels(*key[:4], str(record.status))
        count.inc()
        if not record.backend:  # refused before any model: nothing to time or count tokens of
            return
        routed = (model, record.route, record.arm)
        series = self._series.get(routed)
        if series is None:
            series = self._series[routed] = self._children(routed)
        if record.status < 400:  # a refusal's latency says nothing about the model's
            if record.ttft_s is not None:
                series.ttft.observe(record.ttft_s)
            series.duration.observe(record.duration_s)
        if record.prompt_tokens:
            series.prompt.inc(record.prompt_tokens)
        if record.cached_tokens:
            series.cached.inc(record.cached_tokens)
        if record.generated_tokens:
            series.generated.inc(record.generated_tokens)

    def metrics(self) -> tuple[Counter | Histogram, ...]:
        return (
            self.requests,
            self.ttft,
            self.duration,
            self.prompt,
            self.cached,
            self.generated,
        )

    def _children(self, routed: tuple[str, str, str]) -> _Series:
        return _Series(
            self.ttft.labels(*routed),
            self.duration.labels(*routed),
            self.prompt.labels(*routed),
            self.cached.labels(*routed),
            self.generated.labels(*routed),
        )

    def _unserved_name(self, name: str) -> str:
        if name in self._unserved:
            return name
        if len(self._unserved) < UNSERVED_NAMES:
            self._unserved.add(name)
            return name
        return OTHER_MODEL
