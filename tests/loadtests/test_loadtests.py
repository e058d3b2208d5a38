"""The locust files' settings, a short headless streaming run, and the A/B mix against
examples/ab.yaml."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from swapgate.loadtests.settings import arm_of, chat_body
from tests.support.gateway import start_swapgate
from tests.support.procs import free_port, http_json, wait_until

REPO = Path(__file__).resolve().parents[2]


def test_arm_of_reads_the_route_header_then_the_model() -> None:
    """The arm is x-swapgate-route; without one, the model that served; else "unrouted"."""
    assert arm_of({"x-swapgate-route": "chat-ab/variant-a", "x-swapgate-model": "a"}) == (
        "chat-ab/variant-a"
    )
    assert arm_of({"x-swapgate-model": "alpha"}) == "unrouted alpha"
    assert arm_of({}) == "unrouted"


def test_chat_body_honours_max_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """SWAPGATE_MAX_TOKENS lands in the request body."""
    monkeypatch.setenv("SWAPGATE_MAX_TOKENS", "7")
    assert '"max_tokens": 7' in chat_body("m", stream=True)


@pytest.mark.integration
def test_headless_stream_run_reports_ttft(tmp_path: Path) -> None:
    """A 6 s headless locust run against a fake upstream records chat and TTFT rows (6 s: on
    a loaded 2-core machine locust's users can take seconds to send their first request)."""
    port = free_port()
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swapgate.bench.fake_upstream",
            "--quiet",
            "--port",
            str(port),
            "--ttft",
            "0.05",
            "--tokens",
            "5",
            "--token-interval",
            "0.01",
        ],
        cwd=REPO,
        start_new_session=True,
    )
    try:
        # Locust starts sending at once: a fake still importing would fail the first requests.
        wait_until(lambda: _healthy(port), timeout=30, message="the fake upstream's /health")
        cmd = [
            "locust",
            "-f",
            "loadtests/chat_stream.py",
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "6s",
        ]
        cmd += [
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(tmp_path / "run"),
            "--only-summary",
        ]
        env = {**os.environ, "SWAPGATE_MODEL": "fake-model"}
        done = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        os.killpg(fake.pid, signal.SIGKILL)
        fake.wait()
    with (tmp_path / "run_stats.csv").open() as fh:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}
    assert ("TTFT", "chat stream") in rows, (sorted(rows), done.stdout[-2000:], done.stderr[-3000:])
    ttft = rows[("TTFT", "chat stream")]
    assert int(ttft["Request Count"]) > 0
    assert int(ttft["Failure Count"]) == 0
    assert 40 <= float(ttft["Median Response Time"]) <= 500


def _healthy(port: int) -> bool:
    try:
        return http_json("GET", f"http://127.0.0.1:{port}/health", timeout=1.0)[0] == 200
    except OSError:
        return False


def _locust(locustfile: str, host: str, csv_prefix: Path, env: dict[str, str]) -> None:
    """A 3 s headless locust run with 4 users; fails the test when locust fails."""
    cmd = ["locust", "-f", locustfile, "--headless", "-u", "4", "-r", "4", "-t", "3s"]
    cmd += ["--host", host, "--csv", str(csv_prefix), "--only-summary"]
    done = subprocess.run(
        cmd,
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.integration
def test_ab_mix_against_the_shipped_example_reports_each_arm(tmp_path: Path) -> None:
    """ab_mix.py asks for `chat` and examples/ab.yaml splits it 70/30: every request
    succeeds, and each arm has its own chat and TTFT rows in about that proportion."""
    with start_swapgate((REPO / "examples" / "ab.yaml").read_text()) as gate:
        _locust("loadtests/ab_mix.py", gate.url, tmp_path / "ab", {})
    with (tmp_path / "ab_stats.csv").open() as fh:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}
    arms = {
        name.removeprefix("chat stream "): row
        for (kind, name), row in rows.items()
        if kind == "POST"
    }
    assert set(arms) == {"chat-ab/variant-a", "chat-ab/variant-b"}, sorted(rows)
    counts = {arm: int(row["Request Count"]) for arm, row in arms.items()}
    assert all(
        int(row["Failure Count"]) == 0 for row in rows.values() if row["Name"] != "Aggregated"
    )
    share_a = counts["chat-ab/variant-a"] / sum(counts.values())
    assert sum(counts.values()) >= 30, counts
    assert 0.5 <= share_a <= 0.9, counts  # 70 % expected; >4 standard deviations of slack
    assert int(rows[("TTFT", "chat stream chat-ab/variant-b")]["Request Count"]) > 0
