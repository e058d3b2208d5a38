"""The interleaved two-client swap benchmark: its request pattern, its CLI and one short run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swapgate.bench.interleaved import client_models, estimate_s
from swapgate.bench.swap import main

REPO = Path(__file__).resolve().parents[2]
REQUESTS = 3


def test_clients_alternate_models_out_of_step() -> None:
    """Client 1 asks A B A ..., client 2 B A B ...; with one model every request asks for it."""
    assert client_models(0, 4, ("a", "b")) == ["a", "b", "a", "b"]
    assert client_models(1, 3, ("a", "b")) == ["b", "a", "b"]
    assert client_models(1, 2, ("a",)) == ["a", "a"]


def test_estimate_grows_with_requests_and_start_up_delay() -> None:
    """The up-front estimate rises with the request count and the fake's start-up delay."""
    assert 0 < estimate_s(3, 0.05) < estimate_s(10, 0.05) < estimate_s(10, 0.3)


def test_interleaved_options_need_interleaved() -> None:
    """--requests, --startup-delay and --in-flight are refused without --interleaved."""
    with pytest.raises(SystemExit) as exc:
        main(["--requests", "3"])
    assert exc.value.code == 2


@pytest.mark.integration
def test_interleaved_run_answers_every_request(tmp_path: Path) -> None:
    """A tiny interleaved run through swapgate answers all requests and writes the report."""
    out = tmp_path / "swap.json"
    cmd = [
        sys.executable,
        "-m",
        "swapgate.bench",
        "swap",
        "--interleaved",
        "--requests",
        str(REQUESTS),
    ]
    report = tmp_path / "swap.html"
    cmd += ["--startup-delay", "0.05", "--json", str(out), "--html", str(report)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    total = 2 * 2 * REQUESTS  # two workloads of two clients
    assert "estimated run time" in done.stdout
    assert f"[{total}/{total}] interleaved: client" in done.stdout  # one line per request
    assert "TTFT median (ms)" in done.stdout
    data = json.loads(out.read_text())
    assert data["requests_per_client"] == REQUESTS
    assert data["startup_delay_s"] == 0.05
    assert set(data["ratio"]) == {"wall_s", "ttft_p50_ms", "ttft_p95_ms"}
    for name, models in (("baseline", ["a"]), ("interleaved", ["a", "b"])):
        workload = data[name]
        assert workload["models"] == models
        assert (workload["requests"], workload["completed"], workload["errors"]) == (6, 6, 0)
        assert workload["swaps"] == len(workload["start_sequence"])
        assert 0 < workload["ttft_p50_ms"] <= workload["ttft_p95_ms"]
        assert workload["wall_s"] > 0
        records = workload["records"]
        for client in (1, 2):
            mine = sorted((r for r in records if r["client"] == client), key=lambda r: r["index"])
            assert [r["model"] for r in mine] == client_models(client - 1, REQUESTS, models)
            assert all(not r["error"] and r["ttft_ms"] > 0 for r in mine)
    html = report.read_text(encoding="utf-8")
    assert "<h1>swapgate bench swap --interleaved</h1>" in html
    assert "<tr><td>TTFT median (ms)</td>" in html
    assert f'<th scope="row">requests per client</th><td>{REQUESTS}</td>' in html
    assert data["baseline"]["swaps"] == 0  # one model: nothing to swap to
    assert "b" in data["interleaved"]["start_sequence"]  # B's requests need B started
