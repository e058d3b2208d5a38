"""GatewayMetrics: the series it shows for given requests and lifecycle events, read back
through prometheus_client's own parser of the text format."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from prometheus_client.parser import text_string_to_metric_families

from swapgate.proxy.activity.record import RequestRecord
from swapgate.proxy.events import (
    Cause,
    ConfigReloaded,
    EventBus,
    MemoryFigure,
    QueueChanged,
    RequestFinished,
    StateChanged,
    SwapFinished,
    SwapStarted,
)
from swapgate.proxy.gpu import GpuDevice
from swapgate.proxy.lifecycle.state import BackendState
from swapgate.proxy.metrics import GatewayMetrics
from swapgate.proxy.metrics.requests import OTHER_MODEL, UNSERVED_NAMES

_S = BackendState
MIB = 1024 * 1024
Labels = frozenset[tuple[str, str]]


@dataclass
class FakeBackend:
    state: BackendState = _S.STOPPED
    in_flight: int = 0


@dataclass(frozen=True)
class FakeEntry:
    model: str
    queued: int


@dataclass
class FakePool:
    """The pool's display side: its backends and its queue."""

    backends: dict[str, FakeBackend] = field(default_factory=dict)
    entries: list[FakeEntry] = field(default_factory=list)

    def queue(self) -> Sequence[FakeEntry]:
        return self.entries


@dataclass
class FakeProbe:
    available: bool
    found: list[GpuDevice] = field(default_factory=list)

    def devices(self) -> list[GpuDevice]:
        return self.found


def record(**fields: object) -> RequestRecord:
    base = RequestRecord(
        id=1,
        time=1.7e9,
        method="POST",
        path="/v1/chat/completions",
        endpoint="/v1/chat/completions",
        model="alpha",
        backend="alpha",
        route="",
        arm="",
        key="",
        status=200,
        ttft_s=0.3,
        duration_s=1.5,
        bytes=100,
        stream=True,
        complete=True,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def series(metrics: GatewayMetrics, name: str) -> dict[Labels, float]:
    """Every sample called `name`, by its labels."""
    found: dict[Labels, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[frozenset(sample.labels.items())] = sample.value
    return found


def labels(**values: str) -> Labels:
    return frozenset(values.items())


def routed(model: str, route: str = "", arm: str = "", **extra: str) -> Labels:
    return labels(model=model, route=route, arm=arm, **extra)


def wired(pool: FakePool | None = None) -> tuple[GatewayMetrics, EventBus]:
    metrics = GatewayMetrics(pool or FakePool())
    bus = EventBus()
    bus.on(metrics.on_event)
    return metrics, bus


def finished(bus: EventBus, rec: RequestRecord) -> None:
    bus.publish(RequestFinished(rec, time.monotonic()))


def test_requests_are_counted_by_model_route_arm_endpoint_and_status() -> None:
    metrics, bus = wired()
    finished(bus, record())
    finished(bus, record(stream=False))
    finished(bus, record(backend="variant-a", route="chat-ab", arm="variant-a", model="chat"))
    finished(bus, record(endpoint="/upstream", path="/upstream/alpha/health", status=503))
    finished(bus, record(model="nosuch", backend="", status=404, ttft_s=0.001))
    assert series(metrics, "swapgate_requests_total") == {
        labels(model="alpha", route="", arm="", endpoint="/v1/chat/completions", status="200"): 2,
        labels(
            model="variant-a",
            route="chat-ab",
            arm="variant-a",
            endpoint="/v1/chat/completions",
            status="200",
        ): 1,
        labels(model="alpha", route="", arm="", endpoint="/upstream", status="503"): 1,
        labels(model="nosuch", route="", arm="", endpoint="/v1/chat/completions", status="404"): 1,
    }


def test_latencies_of_answers_fill_the_histograms_and_refusals_do_not() -> None:
    metrics, bus = wired()
    finished(bus, record(ttft_s=0.3, duration_s=1.5))
    finished(bus, record(ttft_s=0.02, duration_s=0.04))
    finished(bus, record(ttft_s=None, duration_s=700.0))  # no body at all: no first token
    finished(bus, record(status=502, ttft_s=0.001, duration_s=0.001))
    finished(bus, record(model="nosuch", backend="", status=404))
    alpha = routed("alpha")
    assert series(metrics, "swapgate_time_to_first_token_seconds_count") == {alpha: 2}
    assert series(metrics, "swapgate_time_to_first_token_seconds_sum")[alpha] == 0.32
    buckets = series(metrics, "swapgate_time_to_first_token_seconds_bucket")
    assert buckets[routed("alpha", le="0.01")] == 0
    assert buckets[routed("alpha", le="0.025")] == 1
    assert buckets[routed("alpha", le="0.25")] == 1
    assert buckets[routed("alpha", le="0.5")] == 2
    assert buckets[routed("alpha", le="+Inf")] == 2
    assert series(metrics, "swapgate_request_duration_seconds_count") == {alpha: 3}
    durations = series(metrics, "swapgate_request_duration_seconds_bucket")
    assert durations[routed("alpha", le="600.0")] == 2  # 700 s lies past the last bucket
    assert durations[routed("alpha", le="+Inf")] == 3
    assert {dict(key)["le"] for key in durations} == {
        *(str(b) for b in (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)),
        *(str(b) for b in (30.0, 60.0, 120.0, 300.0, 600.0)),
        "+Inf",
    }


def test_token_counts_add_up_and_missing_ones_are_skipped() -> None:
    metrics, bus = wired()
    finished(bus, record(prompt_tokens=10, cached_tokens=4, generated_tokens=8))
    finished(bus, record(prompt_tokens=5, generated_tokens=2))
    finished(bus, record())  # the backend reported no usage
    finished(bus, record(route="r", arm="b", backend="beta", generated_tokens=1))
    assert series(metrics, "swapgate_prompt_tokens_total") == {
        routed("alpha"): 15,
        routed("beta", "r", "b"): 0,
    }
    assert series(metrics, "swapgate_cached_tokens_total") == {
        routed("alpha"): 4,
        routed("beta", "r", "b"): 0,
    }
    assert series(metrics, "swapgate_generated_tokens_total") == {
        routed("alpha"): 10,
        routed("beta", "r", "b"): 1,
    }


def test_made_up_model_names_cannot_grow_the_series_without_bound() -> None:
    metrics, bus = wired()
    for i in range(UNSERVED_NAMES + 50):
        finished(bus, record(model=f"made-up-{i}", backend="", status=404))
    finished(bus, record(model="made-up-0", backend="", status=404))  # a known one stays itself
    counts = series(metrics, "swapgate_requests_total")
    models = {dict(key)["model"]: value for key, value in counts.items()}
    assert len(models) == UNSERVED_NAMES + 1
    assert models[OTHER_MODEL] == 50
    assert models["made-up-0"] == 2
    assert series(metrics, "swapgate_time_to_first_token_seconds_count") == {}


def test_model_starts_count_ready_and_failed_outcomes() -> None:
    metrics, bus = wired()
    bus.publish(StateChanged("a", _S.STOPPED, _S.STARTING, Cause.REQUESTED, 1.0))
    bus.publish(StateChanged("a", _S.STARTING, _S.READY, Cause.HEALTHY, 2.0))
    bus.publish(StateChanged("a", _S.READY, _S.FAILED, Cause.EXITED, 3.0))  # not a start
    bus.publish(StateChanged("a", _S.FAILED, _S.STARTING, Cause.REQUESTED, 4.0))
    bus.publish(StateChanged("a", _S.STARTING, _S.FAILED, Cause.START_FAILED, 5.0))
    bus.publish(StateChanged("b", _S.STOPPED, _S.STARTING, Cause.REQUESTED, 6.0))
    bus.publish(StateChanged("b", _S.STARTING, _S.STOPPING, Cause.UNLOAD, 7.0))  # neither
    assert series(metrics, "swapgate_model_starts_total") == {
        labels(model="a", outcome="ready"): 1,
        labels(model="a", outcome="failed"): 1,
        labels(model="b", outcome="ready"): 0,
        labels(model="b", outcome="failed"): 0,
    }


def test_swaps_count_once_per_evicted_model_and_time_each_swap() -> None:
    metrics, bus = wired()
    bus.publish(SwapStarted("c", ("a", "b"), 1.0))  # only the finish counts
    bus.publish(SwapFinished("c", ("a", "b"), 2.5, 3.5))
    bus.publish(SwapFinished("a", (), 0.5, 4.0))  # a cold start: nothing to stop
    bus.publish(SwapFinished("a", ("c",), 40.0, 44.0, error="start failed"))
    assert series(metrics, "swapgate_swaps_total") == {
        labels(**{"from": "a", "to": "c"}): 1,
        labels(**{"from": "b", "to": "c"}): 1,
        labels(**{"from": "", "to": "a"}): 1,
        labels(**{"from": "c", "to": "a"}): 1,
    }
    assert series(metrics, "swapgate_swap_duration_seconds_count") == {
        labels(to="c"): 1,
        labels(to="a"): 2,
    }
    assert series(metrics, "swapgate_swap_duration_seconds_sum") == {
        labels(to="c"): 2.5,
        labels(to="a"): 40.5,
    }


def test_reloads_are_counted_by_outcome_from_zero() -> None:
    metrics, bus = wired()
    assert series(metrics, "swapgate_config_reloads_total") == {
        labels(outcome="applied"): 0,
        labels(outcome="unchanged"): 0,
        labels(outcome="failed"): 0,
    }
    bus.publish(ConfigReloaded("applied", "api", 1.0, added=("x",)))
    bus.publish(ConfigReloaded("failed", "SIGHUP", 2.0, problems=("bad",)))
    bus.publish(ConfigReloaded("applied", "watch", 3.0))
    assert series(metrics, "swapgate_config_reloads_total") == {
        labels(outcome="applied"): 2,
        labels(outcome="unchanged"): 0,
        labels(outcome="failed"): 1,
    }


def test_pool_gauges_are_read_at_scrape_time() -> None:
    pool = FakePool({"alpha": FakeBackend(_S.READY, 2), "beta": FakeBackend()})
    metrics, bus = wired(pool)
    bus.publish(QueueChanged((("beta", 3),), 1.0))  # the gauges read the pool, not this
    pool.entries = [FakeEntry("beta", 3), FakeEntry("gone", 1)]
    assert series(metrics, "swapgate_in_flight_requests") == {
        labels(model="alpha"): 2,
        labels(model="beta"): 0,
    }
    assert series(metrics, "swapgate_queued_requests") == {
        labels(model="alpha"): 0,
        labels(model="beta"): 3,
        labels(model="gone"): 1,
    }
    states = series(metrics, "swapgate_model_state")
    assert len(states) == 2 * len(BackendState)
    assert {key for key, value in states.items() if value == 1} == {
        labels(model="alpha", state="ready"),
        labels(model="beta", state="stopped"),
    }
    pool.backends["alpha"].state = _S.STOPPING
    pool.backends["alpha"].in_flight = 0
    pool.entries = []
    assert series(metrics, "swapgate_model_state")[labels(model="alpha", state="stopping")] == 1
    assert series(metrics, "swapgate_model_state")[labels(model="alpha", state="ready")] == 0
    assert series(metrics, "swapgate_in_flight_requests")[labels(model="alpha")] == 0
    assert series(metrics, "swapgate_queued_requests")[labels(model="beta")] == 0


def test_gpu_series_are_absent_without_nvml() -> None:
    metrics, _ = wired()
    asyncio.run(metrics.read_gpu(FakeProbe(available=False)))
    names = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    assert not {n for n in names if "gpu" in n}


def test_gpu_memory_per_device_and_per_model() -> None:
    metrics, bus = wired()
    devices = [
        GpuDevice(0, "GPU A", total_mib=24576, used_mib=1000, free_mib=23576),
        GpuDevice(1, "GPU B", total_mib=8192, used_mib=0, free_mib=8192),
    ]
    asyncio.run(metrics.read_gpu(FakeProbe(available=True, found=devices)))
    bus.publish(MemoryFigure("alpha", 900, "measured", 1.0))
    bus.publish(MemoryFigure("beta", 300, "measured", 2.0))
    bus.publish(MemoryFigure("alpha", 950, "measured", 3.0))  # a later figure replaces it
    assert series(metrics, "swapgate_gpu_memory_used_bytes") == {
        labels(gpu="0"): 1000 * MIB,
        labels(gpu="1"): 0,
    }
    assert series(metrics, "swapgate_gpu_memory_total_bytes") == {
        labels(gpu="0"): 24576 * MIB,
        labels(gpu="1"): 8192 * MIB,
    }
    assert series(metrics, "swapgate_model_gpu_memory_bytes") == {
        labels(model="alpha", source="measured"): 950 * MIB,
        labels(model="beta", source="measured"): 300 * MIB,
    }
    bus.publish(ConfigReloaded("applied", "api", 4.0, removed=("beta",)))
    assert set(series(metrics, "swapgate_model_gpu_memory_bytes")) == {
        labels(model="alpha", source="measured")
    }


def test_no_created_series_and_gateways_keep_separate_registries() -> None:
    first, bus = wired()
    second, _ = wired()
    finished(bus, record())
    text = first.render().decode()
    assert "_created" not in text
    assert series(first, "swapgate_requests_total")
    assert series(second, "swapgate_requests_total") == {}


def test_metric_names_lists_every_family() -> None:
    assert GatewayMetrics(FakePool()).metric_names() == {
        "swapgate_requests_total",
        "swapgate_time_to_first_token_seconds",
        "swapgate_request_duration_seconds",
        "swapgate_prompt_tokens_total",
        "swapgate_cached_tokens_total",
        "swapgate_generated_tokens_total",
        "swapgate_in_flight_requests",
        "swapgate_queued_requests",
        "swapgate_model_state",
        "swapgate_swaps_total",
        "swapgate_swap_duration_seconds",
        "swapgate_model_starts_total",
        "swapgate_config_reloads_total",
        "swapgate_gpu_memory_used_bytes",
        "swapgate_gpu_memory_total_bytes",
        "swapgate_model_gpu_memory_bytes",
    }


def test_recording_a_request_is_cheap() -> None:
    """Once its series exist, a request costs a few dict lookups and additions: 20,000 of
    them take well under a second even on a busy machine (about 0.1 s on an idle one)."""
    metrics, _ = wired()
    records: Mapping[int, RequestRecord] = {
        i: record(prompt_tokens=10, generated_tokens=5, status=200 if i else 499) for i in (0, 1)
    }
    metrics.on_request(records[0])
    started = time.perf_counter()
    for i in range(20_000):
        metrics.on_request(records[i & 1])
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"20,000 requests took {elapsed:.2f} s"
    total = sum(series(metrics, "swapgate_requests_total").values())
    assert total == 20_001
