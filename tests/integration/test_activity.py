"""The activity log end to end: one record per request through a real swapgate, its
filters and pages, the CSV export, the `request` event, and the SQLite store over a restart."""

from __future__ import annotations

import csv
import io
import signal
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_lifecycle_api import read_events
from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import iter_sse, wait_until

pytestmark = pytest.mark.integration

MODELS = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", tokens=5)}
    aliases: [gpt-4o-mini]
  variant-a:
    cmd: {fake_cmd("variant-a", tokens=3)}
  variant-b:
    cmd: {fake_cmd("variant-b", tokens=3)}
groups:
  ab:
    swap: false
    members: [variant-a, variant-b]
routes:
  - name: chat-ab
    match: {{model: chat}}
    split:
      - {{to: variant-a, weight: 50}}
      - {{to: variant-b, weight: 50}}
"""


def records(gate: Swapgate, query: str = "") -> dict[str, Any]:
    status, _, body = gate.get("/api/activity" + query)
    assert status == 200, body
    page: dict[str, Any] = body
    return page


def stream_chat(gate: Swapgate, model: str) -> list[str]:
    body = {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    return [event.data for event in iter_sse(gate.url + "/v1/chat/completions", body)]


def test_each_request_is_one_record_with_its_figures() -> None:
    with start_swapgate(MODELS) as gate:
        assert gate.chat("gpt-4o-mini")[0] == 200
        assert stream_chat(gate, "alpha")[-1] == "[DONE]"
        assert gate.chat("nope")[0] == 404
        status, _, _ = gate.get("/upstream/alpha/v1/models")
        assert status == 200
        for _ in range(6):
            assert gate.chat("chat")[0] == 200

        page = records(gate)
        assert len(page["records"]) == 10
        upstream, missing, streamed, plain = page["records"][6:]  # newest first
        assert (plain["model"], plain["backend"], plain["status"]) == ("gpt-4o-mini", "alpha", 200)
        assert (plain["stream"], plain["generated_tokens"], plain["prompt_tokens"]) == (False, 5, 1)
        assert streamed["stream"] is True
        assert streamed["generated_tokens"] == 5
        assert streamed["decode_tokens_per_s"] > 0
        assert 0 < streamed["ttft_s"] <= streamed["duration_s"]
        assert (missing["status"], missing["backend"], missing["model"]) == (404, "", "nope")
        assert (upstream["endpoint"], upstream["path"]) == (
            "/upstream",
            "/upstream/alpha/v1/models",
        )
        routed = page["records"][:6]
        assert {r["route"] for r in routed} == {"chat-ab"}
        assert {r["arm"] for r in routed} <= {"variant-a", "variant-b"}
        assert all(r["arm"] == r["backend"] for r in routed)
        summary = page["summary"]
        assert (summary["requests"], summary["errors"]) == (10, 1)
        assert summary["generated_tokens"] == 5 + 5 + 6 * 3

        assert len(records(gate, "?status=error")["records"]) == 1
        assert len(records(gate, "?model=alpha")["records"]) == 3  # by backend or asked name
        assert len(records(gate, "?route=chat-ab&status=2xx")["records"]) == 6
        first = records(gate, "?limit=4")
        second = records(gate, f"?limit=4&before={first['next']}")
        ids = [r["id"] for r in first["records"] + second["records"]]
        assert ids == sorted(ids, reverse=True)
        assert len(set(ids)) == 8
        assert second["summary"]["requests"] == 10  # the summary is of every match

        status, _, _ = gate.get("/api/activity?limit=0")
        assert status == 400

        csv_url = gate.url + "/api/activity.csv?status=4xx"
        with urllib.request.urlopen(csv_url, timeout=5) as r:  # noqa: S310 (http://127.0.0.1)
            assert r.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(r.read().decode())))
        assert [(row["model"], row["status"]) for row in rows] == [("nope", "404")]


def test_a_finished_request_is_an_event() -> None:
    with start_swapgate(MODELS) as gate:
        stop = threading.Event()
        seen: list[tuple[str, dict[str, Any]]] = []
        reader = threading.Thread(target=read_events, args=(gate, stop, seen), daemon=True)
        reader.start()
        try:
            wait_until(lambda: any(name == "snapshot" for name, _ in seen), timeout=5)
            assert gate.chat("alpha")[0] == 200
            wait_until(lambda: any(name == "request" for name, _ in seen), timeout=5)
        finally:
            stop.set()
            reader.join(5)
        [event] = [payload for name, payload in seen if name == "request"]
        assert event["record"]["backend"] == "alpha"
        assert event["record"]["status"] == 200


def test_the_store_keeps_records_over_a_restart(tmp_path: Path) -> None:
    config = MODELS + f"store:\n  path: {tmp_path / 'activity.sqlite'}\nmetricsMaxInMemory: 2\n"
    with start_swapgate(config) as gate:
        for _ in range(3):
            assert gate.chat("alpha")[0] == 200
        gate.proc.send_signal(signal.SIGTERM)  # a normal stop writes what is queued
        assert gate.proc.wait(15) == 0
        assert "store" not in gate.output()  # acted on: no "not supported" warning
    with start_swapgate(config) as gate:
        assert gate.chat("alpha")[0] == 200
        page = records(gate)
        assert [r["id"] for r in page["records"]] == [4, 3, 2, 1]
        assert page["stored"] is True
        assert page["capacity"] == 2
