"""GatewayMetrics: every series GET /metrics shows, on a registry of its own.

It subscribes to the pool's EventBus (`on_event`): finished requests, state changes, swaps,
memory figures and reloads update counters as they happen; gauges of the pool and the GPU
are read at scrape time (collectors.py). A registry of its own, never prometheus_client's
global one: two gateways in one process (tests) never share or clash.

Swaps: every SwapFinished, also a failed one, counts once per model it stopped, as
`from` -> `to`; a start that stopped nothing counts once with `from=""`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import Metric

from swapgate.proxy.activity.record import RequestRecord
from swapgate.proxy.events import (
    ConfigReloaded,
    Event,
    MemoryFigure,
    RequestFinished,
    StateChanged,
    SwapFinished,
)
from swapgate.proxy.gpu import GpuDevice
from swapgate.proxy.lifecycle.state import BackendState
from swapgate.proxy.metrics.collectors import MIB, GpuCollector, PoolCollector, PoolView
from swapgate.proxy.metrics.requests import LATENCY_BUCKETS, RequestMetrics

RELOAD_OUTCOMES = ("applied", "unchanged", "failed")
_STARTING = BackendState.STARTING
_START_OUTCOMES = {BackendState.READY: "ready", BackendState.FAILED: "failed"}

# `*_created` series double the output and no dashboard reads them (process-wide switch;
# swapgate has no other registry).
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream


class _Described(Protocol):
    def describe(self) -> Iterable[Metric]: ...


class GpuSource(Protocol):
    """What the exporter reads of proxy/gpu.py's GpuProbe."""

    @property
    def available(self) -> bool: ...
    def devices(self) -> list[GpuDevice]: ...


class GatewayMetrics:
    """The gateway's Prometheus series; `render()` is the /metrics body."""

    def __init__(self, pool: PoolView) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestMetrics(self.registry)
        self._swaps = Counter(
            "swapgate_swaps_total",
            "Finished swaps, once per model stopped (from) for the model started (to).",
            ("from", "to"),
            registry=self.registry,
        )
        self._swap_duration = Histogram(
            "swapgate_swap_duration_seconds",
            "From a swap's start (stopping what it evicts) until its model was ready or failed.",
            ("to",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._starts = Counter(
            "swapgate_model_starts_total",
            "Model server starts by how they ended: ready, or failed.",
            ("model", "outcome"),
            registry=self.registry,
        )
        self._reloads = Counter(
            "swapgate_config_reloads_total",
            "Config reloads by outcome: applied, unchanged or failed.",
            ("outcome",),
            registry=self.registry,
        )
        for outcome in RELOAD_OUTCOMES:  # present from the start, so rate() sees the first
            self._reloads.labels(outcome)
        self._pool = PoolCollector(pool)
        self._gpu = GpuCollector()
        self.registry.register(self._pool)
        self.registry.register(self._gpu)

    def on_event(self, event: Event) -> None:
        """The EventBus callback (synchronous, on the publisher's stack)."""
        if isinstance(event, RequestFinished):
            self.on_request(event.record)
        elif isinstance(event, StateChanged):
            self._state_changed(event)
        elif isinstance(event, SwapFinished):
            for evicted in event.evict or ("",):
                self._swaps.labels(evicted, event.target).inc()
            self._swap_duration.labels(event.target).observe(event.duration_s)
        elif isinstance(event, MemoryFigure):
            self._gpu.figures[event.model] = (event.source, event.mib * MIB)
        elif isinstance(event, ConfigReloaded):
            self._reloads.labels(event.outcome).inc()
            for model in event.removed:
                self._gpu.figures.pop(model, None)

    def on_request(self, record: RequestRecord) -> None:
        """Count one finished inference request."""
        self.requests.observe(record)

    def _state_changed(self, event: StateChanged) -> None:
        if event.new is _STARTING:  # both outcomes exist from a model's first start on
            for outcome in _START_OUTCOMES.values():
                self._starts.labels(event.model, outcome)
        elif event.old is _STARTING and event.new in _START_OUTCOMES:
            self._starts.labels(event.model, _START_OUTCOMES[event.new]).inc()

    async def read_gpu(self, probe: GpuSource) -> None:
        """Fetch the GPUs' memory for the next render, in a thread (NVML may block)."""
        devices: Sequence[GpuDevice] = ()
        if probe.available:
            devices = await asyncio.to_thread(probe.devices)
        self._gpu.devices = devices

    def render(self) -> bytes:
        """The text exposition of every series."""
        return generate_latest(self.registry)

    def metric_names(self) -> frozenset[str]:
        """The name of every series family this exporter can show (counters with `_total`,
        histograms without their `_bucket`/`_sum`/`_count` suffixes)."""
        parts: tuple[_Described, ...] = (
            *self.requests.metrics(),
            self._swaps,
            self._swap_duration,
            self._starts,
            self._reloads,
            self._pool,
            self._gpu,
        )
        return frozenset(
            f"{family.name}_total" if family.type == "counter" else family.name
            for part in parts
            for family in part.describe()
        )
