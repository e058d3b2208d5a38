"""Tests for proxy.routestats.RouteStats: per rule and variant figures for A/B tests."""

from __future__ import annotations

from swapgate.proxy.routestats import RouteStats


class FakeClock:
    """A settable clock in epoch seconds."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_empty_snapshot() -> None:
    """Before any request, the snapshot has only `since`."""
    stats = RouteStats(clock=FakeClock(0.0))
    assert stats.snapshot() == {"since": "1970-01-01T00:00:00+00:00", "routes": {}}


def test_rule_and_arm_figures() -> None:
    """Counts, errors by status, nearest-rank percentiles and throughput per rule and arm."""
    stats = RouteStats(clock=FakeClock(0.0))
    for i in range(1, 21):
        stats.record("chat-ab", "variant-a", 200, ttft_s=i / 10, total_s=i, output_tokens=10)
    stats.record("chat-ab", "variant-b", 503, ttft_s=None, total_s=0.5, output_tokens=None)
    stats.record("premium", None, 404, ttft_s=None, total_s=0.1, output_tokens=None)
    snap = stats.snapshot()
    routes = snap["routes"]
    assert isinstance(routes, dict)
    arm_a = routes["chat-ab"]["arms"]["variant-a"]
    assert arm_a["requests"] == 20
    assert arm_a["errors"] == {}
    assert arm_a["ttft_s"] == {"p50": 1.0, "p95": 1.9}
    assert arm_a["total_s"] == {"p50": 10, "p95": 19}
    generating = sum(i - i / 10 for i in range(1, 21))
    assert arm_a["output_tokens_per_s"] == 200 / generating
    assert routes["chat-ab"]["requests"] == 21
    assert routes["chat-ab"]["errors"] == {"503": 1}
    assert routes["chat-ab"]["arms"]["variant-b"]["ttft_s"] == {"p50": None, "p95": None}
    assert routes["premium"]["arms"] == {}
    assert routes["premium"]["errors"] == {"404": 1}
    assert routes["premium"]["output_tokens_per_s"] is None


def test_window_bounds_samples_not_counts() -> None:
    """Only the last `window` samples feed percentiles; request counts stay exact."""
    stats = RouteStats(clock=FakeClock(0.0), window=4)
    for total in (100.0, 100.0, 1.0, 2.0, 3.0, 4.0):
        stats.record("r", None, 200, ttft_s=None, total_s=total, output_tokens=None)
    rule = stats.snapshot()["routes"]["r"]  # type: ignore[index]
    assert rule["requests"] == 6
    assert rule["total_s"] == {"p50": 2.0, "p95": 4.0}


def test_reset_clears_and_moves_since() -> None:
    """reset() forgets every figure and stamps `since` with the current time."""
    clock = FakeClock(0.0)
    stats = RouteStats(clock=clock)
    stats.record("r", None, 200, ttft_s=0.1, total_s=1.0, output_tokens=5)
    clock.now = 86400.0
    stats.reset()
    assert stats.snapshot() == {"since": "1970-01-02T00:00:00+00:00", "routes": {}}


def test_latencies_are_rounded_to_a_tenth_of_a_millisecond() -> None:
    """Percentiles come out in seconds with 4 decimals (0.1 ms), not raw clock floats."""
    stats = RouteStats(clock=FakeClock(0.0))
    stats.record("r", "a", 200, ttft_s=0.123456789, total_s=1.98765432, output_tokens=None)
    rule = stats.snapshot()["routes"]["r"]  # type: ignore[index]
    assert rule["ttft_s"] == {"p50": 0.1235, "p95": 0.1235}
    assert rule["arms"]["a"]["total_s"] == {"p50": 1.9877, "p95": 1.9877}
