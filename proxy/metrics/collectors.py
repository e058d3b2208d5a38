"""Series read at scrape time: the pool's per-model gauges, and GPU memory.

The pool collector reads the backends and the queue when Prometheus scrapes (on the event
loop, like every other reader of the pool), so the gauges are exact at that moment and cost
nothing between scrapes. GPU figures come from NVML, which may block: `GpuCollector` only
replays what `GatewayMetrics.read_gpu` fetched in a thread just before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from swapgate.proxy.gpu import GpuDevice
from swapgate.proxy.lifecycle.state import BackendState

MIB = 1024 * 1024


class BackendView(Protocol):
    """What the collector reads of a Backend."""

    @property
    def state(self) -> BackendState: ...
    @property
    def in_flight(self) -> int: ...


class QueueView(Protocol):
    """What the collector reads of a QueueEntry."""

    @property
    def model(self) -> str: ...
    @property
    def queued(self) -> int: ...


class PoolView(Protocol):
    """What the collector reads of the BackendPool."""

    @property
    def backends(self) -> Mapping[str, BackendView]: ...
    def queue(self) -> Sequence[QueueView]: ...


class PoolCollector:
    """swapgate_in_flight_requests, swapgate_queued_requests and swapgate_model_state."""

    def __init__(self, pool: PoolView) -> None:
        self._pool = pool

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        in_flight, queued, state = self._families()
        backends = self._pool.backends
        waiting = {entry.model: entry.queued for entry in self._pool.queue()}
        for model, backend in backends.items():
            in_flight.add_metric([model], backend.in_flight)
            queued.add_metric([model], waiting.pop(model, 0))
            for value in BackendState:
                state.add_metric([model, value.value], 1 if backend.state is value else 0)
        for model, count in waiting.items():  # a model a reload removed, still queued for
            queued.add_metric([model], count)
        return (in_flight, queued, state)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "swapgate_in_flight_requests",
                "Requests a model's server is answering now.",
                labels=("model",),
            ),
            GaugeMetricFamily(
                "swapgate_queued_requests",
                "Requests waiting for a model to start or to have room.",
                labels=("model",),
            ),
            GaugeMetricFamily(
                "swapgate_model_state",
                "1 for each model's current state, 0 for its other states.",
                labels=("model", "state"),
            ),
        )


class GpuCollector:
    """GPU memory per device (as last read) and each model's last measured figure."""

    def __init__(self) -> None:
        self.devices: Sequence[GpuDevice] = ()
        self.figures: dict[str, tuple[str, int]] = {}  # model -> (source, bytes)

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        used, total, model = self._families()
        for device in self.devices:
            used.add_metric([str(device.index)], device.used_mib * MIB)
            total.add_metric([str(device.index)], device.total_mib * MIB)
        for name, (source, size) in sorted(self.figures.items()):
            model.add_metric([name, source], size)
        # Without NVML there is nothing to say: no family at all rather than empty ones.
        return [family for family in (used, total, model) if family.samples]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "swapgate_gpu_memory_used_bytes",
                "GPU memory in use, by device index (NVML).",
                labels=("gpu",),
            ),
            GaugeMetricFamily(
                "swapgate_gpu_memory_total_bytes",
                "GPU memory, by device index (NVML).",
                labels=("gpu",),
            ),
            GaugeMetricFamily(
                "swapgate_model_gpu_memory_bytes",
                "A model's GPU memory as last measured while it ran (what scheduling plans with).",
                labels=("model", "source"),
            ),
        )
