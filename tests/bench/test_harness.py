"""The benchmark's statistics helpers, its output parsing, and one short end-to-end run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from swapgate.bench.loadgen import RequestResult, RunResult, Summary
from swapgate.bench.saturation import parse_wrk
from swapgate.bench.stats import (
    Target,
    median,
    median_of_ratios,
    overhead_pct,
    percentile,
    round_order,
)

REPO = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:1/v1/chat/completions
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  600.00us  10.00ms   90.00%
  Latency Distribution
     50%    1.08ms
     75%    1.30ms
     90%    1.70ms
     99%  812.00us
  26037 requests in 3.00s, 9.61MB read
  Non-2xx or 3xx responses: 2
Requests/sec:   8679.01
Transfer/sec:      3.20MB
"""


def test_percentile_interpolates_between_ranks() -> None:
    """Percentiles interpolate linearly, like numpy's default."""
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert median(values) == 2.5
    assert percentile(values, 99) == pytest.approx(3.97)


def test_percentile_of_nothing_is_nan_and_bounds_are_checked() -> None:
    """No samples gives NaN; a percentage outside 0..100 is an error."""
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_overhead_sign_depends_on_direction() -> None:
    """Positive overhead means worse: longer latency, or fewer tokens/s."""
    assert overhead_pct(100.0, 104.0) == pytest.approx(4.0)
    assert overhead_pct(100.0, 96.0, higher_is_better=True) == pytest.approx(4.0)
    assert overhead_pct(100.0, 104.0, higher_is_better=True) == pytest.approx(-4.0)
    assert math.isnan(overhead_pct(0.0, 1.0))
    assert math.isnan(overhead_pct(math.nan, 1.0))


def test_round_order_alternates_and_pairs_each_round() -> None:
    """Rounds run A B, B A, A B ...: each round has both targets, adjacent."""
    d, v = Target.DIRECT, Target.VIA
    assert round_order(3) == [(0, d), (0, v), (1, v), (1, d), (2, d), (2, v)]
    assert round_order(0) == []


def test_median_of_ratios_ignores_one_bad_round() -> None:
    """One outlier round does not move the gate's figure much; NaN rounds are skipped."""
    pairs = [(100.0, 101.0), (100.0, 102.0), (100.0, 150.0), (math.nan, 1.0)]
    assert median_of_ratios(pairs, higher_is_better=False) == pytest.approx(2.0)


def test_summary_uses_successful_requests_only() -> None:
    """Errors are counted but left out of latency and throughput figures."""
    run = RunResult(
        [
            RequestResult(0.1, 1.0, 50),
            RequestResult(0.3, 1.2, 50),
            RequestResult(0, 0.01, 0, "HTTP 502"),
        ],
        wall_s=2.0,
    )
    summary = Summary.of(run)
    assert (summary.requests, summary.errors) == (3, 1)
    assert summary.ttft_p50_ms == pytest.approx(200.0)
    assert summary.tokens_per_s == pytest.approx(50.0)


def test_parse_wrk_reads_rate_latency_and_errors() -> None:
    """wrk's text output is parsed with its units (us, ms) converted to ms."""
    requests, rps, p50, p99, errors = parse_wrk(WRK_OUTPUT)
    assert (requests, errors) == (26037, 2)
    assert rps == pytest.approx(8679.01)
    assert p50 == pytest.approx(1.08)
    assert p99 == pytest.approx(0.812)


@pytest.mark.integration
def test_short_run_writes_sane_json(tmp_path: Path) -> None:
    """A 2-round run against the spawned fake and swapgate writes every expected figure."""
    out = tmp_path / "out.json"
    # Two-token answers keep 80 sequential requests near 0.15 s each: about 15 s in all.
    cmd = [
        sys.executable,
        "-m",
        "swapgate.bench",
        "--concurrency",
        "1",
        "--requests",
        "20",
        "--rounds",
        "2",
    ]
    cmd += ["--max-tokens", "2"]
    done = subprocess.run(
        [*cmd, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "median TTFT" in done.stdout
    data = json.loads(out.read_text())
    (level,) = data["levels"]
    assert level["concurrency"] == 1
    assert len(level["rounds"]) == 2
    for side in ("direct", "via"):
        figures = level[side]
        assert figures["requests"] == 40
        assert figures["errors"] == 0
        assert 90 <= figures["ttft_p50_ms"] <= 300  # the fake's first token comes at 100 ms
        assert figures["latency_p99_ms"] >= figures["ttft_p50_ms"]
        assert 5 <= figures["tokens_per_s"] <= 40  # 2 tokens per ~0.14 s request, one stream
    assert set(level["overhead_pct"]) == {"ttft_p50_ms", "latency_p99_ms", "tokens_per_s"}
    assert data["connection"]["direct_ms"] > 0
