"""The lifecycle's HTTP surface: load API, event stream, /running fields, loading state."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import SseParser, iter_sse, wait_until

pytestmark = pytest.mark.integration

CHAT = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def config(*, loading: bool = False, delay: float = 0.0) -> str:
    return f"""
sendLoadingState: {str(loading).lower()}
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", startup_delay=delay or None)}
  bravo:
    cmd: {fake_cmd("bravo", say="bravo")}
"""


def read_events(
    gate: Swapgate, stop: threading.Event, out: list[tuple[str, dict[str, Any]]]
) -> None:
    """Collect /api/events as (event name, payload) until `stop` is set."""
    parts = urlsplit(gate.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=0.5)
    conn.request("GET", "/api/events")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type", "").startswith("text/event-stream")
    parser = SseParser()
    try:
        while not stop.is_set():
            try:
                chunk = response.read1(65536)
            except TimeoutError:  # a quiet moment: look at `stop` again
                continue
            if not chunk:
                return
            out.extend(
                (event.event or "", json.loads(event.data))
                for event in parser.feed(chunk, time.monotonic())
            )
    finally:
        conn.close()


@pytest.fixture
def gate() -> Iterator[Swapgate]:
    with start_swapgate(config()) as running:
        yield running


def test_load_api_starts_a_model_and_answers_when_ready(gate: Swapgate) -> None:
    """POST /api/models/load/{model} returns once the model is ready; it then serves at once."""
    status, _, body = gate.post("/api/models/load/alpha", timeout=30)
    assert (status, body) == (200, {"model": "alpha", "state": "ready"})
    assert gate.running()["alpha"]["state"] == "ready"
    # the load went through the scheduler: bravo replaces alpha as a request would
    status, _, body = gate.post("/api/models/load/bravo", timeout=30)
    assert status == 200
    assert list(gate.running()) == ["bravo"]


def test_load_api_without_waiting_answers_202(gate: Swapgate) -> None:
    """?wait=false answers 202 at once and the model becomes ready in the background."""
    status, _, body = gate.post("/api/models/load/alpha?wait=false")
    assert status == 202
    assert body["model"] == "alpha"
    wait_until(lambda: gate.running().get("alpha", {}).get("state") == "ready", timeout=15)


def test_load_api_unknown_model_is_404(gate: Swapgate) -> None:
    """Loading a model that is not configured is 404 with the known models."""
    status, _, body = gate.post("/api/models/load/nope")
    assert status == 404
    assert "known models: alpha, bravo" in body["error"]["message"]


def test_events_stream_a_snapshot_then_state_swap_and_queue_events(gate: Swapgate) -> None:
    """/api/events starts with a snapshot, then shows the swap as typed events in order."""
    events: list[tuple[str, dict[str, Any]]] = []
    stop = threading.Event()
    reader = threading.Thread(target=read_events, args=(gate, stop, events), daemon=True)
    reader.start()
    try:
        wait_until(lambda: events, timeout=5, message="snapshot")
        assert events[0][0] == "snapshot"
        assert {m["model"] for m in events[0][1]["models"]} == {"alpha", "bravo"}
        assert gate.chat("alpha")[0] == 200
        assert gate.chat("bravo")[0] == 200

        def moves() -> list[tuple[object, object, object]]:
            return [(e["model"], e["old"], e["new"]) for k, e in events if k == "state"]

        wait_until(lambda: ("bravo", "starting", "ready") in moves(), timeout=10)
        assert moves() == [
            ("alpha", "stopped", "starting"),
            ("alpha", "starting", "ready"),
            ("alpha", "ready", "stopping"),
            ("alpha", "stopping", "stopped"),
            ("bravo", "stopped", "starting"),
            ("bravo", "starting", "ready"),
        ]
        causes = [e["cause"] for k, e in events if k == "state"]
        assert causes[2] == "swap"
        started = [e for k, e in events if k == "swap_started"]
        finished = [e for k, e in events if k == "swap_finished"]
        assert [e["target"] for e in started] == ["alpha", "bravo"]
        assert started[1]["evict"] == ["alpha"]
        assert finished[1]["error"] == ""
        assert isinstance(finished[1]["duration_s"], float)
        assert abs(float(str(finished[1]["at"])) - time.time()) < 60  # unix time for clients
    finally:
        stop.set()
        reader.join(5)


def test_running_shows_queue_failures_and_memory() -> None:
    """/running lists a failing model with its failure count, back-off and last error."""
    yaml = config() + f"  broken:\n    cmd: {fake_cmd('broken', exit_on_start=2)}\n"
    with start_swapgate(yaml) as gate:
        status, _, _ = gate.chat("broken")
        assert status == 503
        record = gate.running()["broken"]
        assert record["state"] == "failed"
        assert record["failures"] == 1
        assert 0 < record["retryAfter"] <= 1.0
        assert "exited with code 2 during startup" in record["lastError"]
        assert record["queued"] == 0
        assert record["memory"]["source"] == "unknown"
        assert gate.chat("alpha")[0] == 200
        assert gate.running()["alpha"]["memory"] == {
            "mib": 0,
            "source": "unknown",
            "detail": "no vram set and no GGUF file found in cmd",
        }


def test_loading_state_streams_progress_then_the_answer() -> None:
    """With sendLoadingState a streamed chat shows reasoning_content progress while the model
    loads, then the model's own tokens, all in one 200 SSE stream."""
    with start_swapgate(config(loading=True, delay=1.0)) as gate:
        events = list(iter_sse(gate.url + "/v1/chat/completions", CHAT, timeout=30))
        chunks = [json.loads(e.data) for e in events if e.data != "[DONE]"]
        reasoning = [
            c["choices"][0]["delta"]["reasoning_content"]
            for c in chunks
            if "reasoning_content" in c["choices"][0]["delta"]
        ]
        content = [c["choices"][0]["delta"].get("content") for c in chunks]
        assert reasoning, chunks
        assert any("loading alpha" in text for text in reasoning), reasoning
        assert " alpha" in content
        # progress first, then the answer
        first_answer = next(
            i for i, c in enumerate(chunks) if c["choices"][0]["delta"].get("content")
        )
        assert all(
            "reasoning_content" not in c["choices"][0]["delta"] for c in chunks[first_answer:]
        )
        assert events[-1].data == "[DONE]"


def test_without_loading_state_the_stream_is_only_the_answer() -> None:
    """sendLoadingState off (the default): no progress chunks, just the model's stream."""
    with start_swapgate(config(delay=0.5)) as gate:
        events = list(iter_sse(gate.url + "/v1/chat/completions", CHAT, timeout=30))
        assert all("reasoning_content" not in e.data for e in events)
        assert any(" alpha" in e.data for e in events)


def test_loading_state_reports_a_start_failure_as_an_sse_error() -> None:
    """A model that fails to start during a loading stream ends it with an error event."""
    yaml = "sendLoadingState: true\nmodels:\n  alpha:\n    cmd: " + fake_cmd(
        "alpha", exit_on_start=4
    )
    with start_swapgate(yaml) as gate:
        events = list(iter_sse(gate.url + "/v1/chat/completions", CHAT, timeout=30))
        error = json.loads(events[-1].data)["error"]
        assert error["code"] == "backend_start_failed"
        assert "exited with code 4" in error["message"]


def test_loading_state_never_hides_an_immediate_refusal() -> None:
    """A request refused at once (here: the model's crash back-off) gets its plain 503 with
    Retry-After, not a 200 loading stream that ends in an error."""
    yaml = "sendLoadingState: true\nmodels:\n  alpha:\n    cmd: " + fake_cmd(
        "alpha", exit_on_start=4
    )
    with start_swapgate(yaml) as gate:
        list(iter_sse(gate.url + "/v1/chat/completions", CHAT, timeout=30))  # fails the start
        status, headers, body = gate.post("/v1/chat/completions", CHAT)
        assert status == 503, body
        assert body["error"]["code"] == "backend_failed"
        assert "retry-after" in headers
