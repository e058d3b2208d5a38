"""The locust files' settings parsing and one short headless streaming run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from loadtests.settings import ab_models, chat_body
from tests.support.procs import free_port

REPO = Path(__file__).resolve().parents[2]


def test_ab_models_parses_weights() -> None:
    """``a:70,b:30`` gives weighted pairs; a bare name weighs 1; empty is an error."""
    assert ab_models("a:70, b:30,c") == [("a", 70), ("b", 30), ("c", 1)]
    with pytest.raises(ValueError, match="SWAPGATE_AB_MODELS"):
        ab_models("")


def test_chat_body_honours_max_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """SWAPGATE_MAX_TOKENS lands in the request body."""
    monkeypatch.setenv("SWAPGATE_MAX_TOKENS", "7")
    assert '"max_tokens": 7' in chat_body("m", stream=True)


@pytest.mark.integration
def test_headless_stream_run_reports_ttft(tmp_path: Path) -> None:
    """A 3 s headless locust run against a fake upstream records chat and TTFT rows."""
    port = free_port()
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fake_upstream",
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
            "3s",
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
    ttft = rows[("TTFT", "chat stream")]
    assert int(ttft["Request Count"]) > 0
    assert int(ttft["Failure Count"]) == 0
    assert 40 <= float(ttft["Median Response Time"]) <= 500
