"""Shutdown paths: SIGTERM drains and stops children; SIGKILL of swapgate takes them along."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import signal
import time

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import SseEvent, iter_sse, pids_alive, wait_until

pytestmark = pytest.mark.integration


def config(**flags: object) -> str:
    return f"""
shutdownTimeout: 10
models:
  alpha:
    cmd: {fake_cmd("alpha", **flags)}
"""


def test_sigterm_finishes_in_flight_requests_then_stops_children() -> None:
    """A request in progress at SIGTERM completes; then swapgate exits 0 with no child left."""
    with start_swapgate(config(tokens=10, token_interval=0.1)) as gate:
        assert gate.chat("alpha")[0] == 200
        child = gate.running()["alpha"]["pid"]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(gate.chat, "alpha")
            wait_until(lambda: gate.running()["alpha"]["inFlight"] == 1)
            gate.proc.send_signal(signal.SIGTERM)
            status, _, body = slow.result()
        assert status == 200
        assert body["usage"]["completion_tokens"] == 10
        assert gate.proc.wait(15) == 0
        assert pids_alive([child]) == []


def test_sigterm_with_a_server_that_ignores_sigterm_still_kills_it() -> None:
    """unloadTimeout bounds the wait: a child ignoring SIGTERM is SIGKILLed."""
    text = (
        config(ignore_sigterm=True).replace("shutdownTimeout: 10", "shutdownTimeout: 1")
        + "    unloadTimeout: 1\n"
    )
    with start_swapgate(text) as gate:
        assert gate.chat("alpha")[0] == 200
        child = gate.running()["alpha"]["pid"]
        assert gate.terminate() == 0
        assert pids_alive([child]) == []


def test_sigkill_of_swapgate_leaves_no_model_server_running() -> None:
    """Even SIGKILL of swapgate, which runs no cleanup code, takes the model servers with it."""
    with start_swapgate(config()) as gate:
        assert gate.chat("alpha")[0] == 200
        child = gate.running()["alpha"]["pid"]
        gate.proc.send_signal(signal.SIGKILL)
        gate.proc.wait(5)
        wait_until(lambda: pids_alive([child]) == [], timeout=5, message="child to die")


def test_requests_after_sigterm_are_refused_with_503() -> None:
    """During the drain new requests get a clear 503 instead of starting anything."""
    with start_swapgate(config(tokens=20, token_interval=0.1)) as gate:
        assert gate.chat("alpha")[0] == 200
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(gate.chat, "alpha")
            wait_until(lambda: gate.running()["alpha"]["inFlight"] == 1)
            gate.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: "draining" in gate.output(), timeout=5)
            status, _, body = gate.chat("alpha")
            assert status == 503
            assert body["error"]["code"] == "shutting_down"
            assert slow.result()[0] == 200
        assert gate.proc.wait(15) == 0


def _stream_all(gate: Swapgate) -> list[SseEvent] | str:
    """Every event of one streamed chat, or the error that cut the stream off."""
    body = {"model": "alpha", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    try:
        return list(iter_sse(gate.url + "/v1/chat/completions", body, timeout=60))
    except (OSError, http.client.HTTPException) as exc:
        return repr(exc)


def _start_long_stream(
    gate: Swapgate, pool: concurrent.futures.Executor
) -> concurrent.futures.Future[list[SseEvent] | str]:
    """A 60 s stream, running once this returns; its future holds what the client got."""
    stream = pool.submit(_stream_all, gate)
    wait_until(lambda: gate.running().get("alpha", {}).get("inFlight") == 1, timeout=15)
    return stream


def test_streams_still_running_at_shutdown_timeout_end_and_swapgate_exits() -> None:
    """At shutdownTimeout the stream ends with an SSE error event and swapgate exits 0 soon
    after, with no child left, instead of waiting for the stream to finish."""
    text = config(tokens=600, token_interval=0.1).replace(
        "shutdownTimeout: 10", "shutdownTimeout: 2"
    )
    with start_swapgate(text) as gate, concurrent.futures.ThreadPoolExecutor(1) as pool:
        stream = _start_long_stream(gate, pool)
        child = gate.running()["alpha"]["pid"]
        signalled = time.monotonic()
        gate.proc.send_signal(signal.SIGTERM)
        assert gate.proc.wait(15) == 0
        took = time.monotonic() - signalled
        events = stream.result(10)
        output = gate.output()
    assert 2 <= took < 2 + 3, output
    assert "stopping anyway" in output
    assert isinstance(events, list), events
    last = json.loads(events[-1].data)
    assert last["error"]["type"] == "upstream_error"
    assert pids_alive([child]) == []


@pytest.mark.parametrize(("second", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_kills_the_children_and_exits_at_once(
    second: signal.Signals, code: int
) -> None:
    """A second SIGINT/SIGTERM during the drain exits with 128 + its number within a second
    or two, and takes the model servers with it."""
    text = config(tokens=600, token_interval=0.1).replace(
        "shutdownTimeout: 10", "shutdownTimeout: 60"
    )
    with start_swapgate(text) as gate, concurrent.futures.ThreadPoolExecutor(1) as pool:
        stream = _start_long_stream(gate, pool)
        child = gate.running()["alpha"]["pid"]
        gate.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "draining" in gate.output(), timeout=5)
        signalled = time.monotonic()
        gate.proc.send_signal(second)
        assert gate.proc.wait(10) == code
        assert time.monotonic() - signalled < 2, gate.output()
        stream.result(10)
    wait_until(lambda: pids_alive([child]) == [], timeout=5, message="the model server to die")


def test_sighup_reloads_and_keeps_serving() -> None:
    """SIGHUP does not kill swapgate: it reads the config again (unchanged here) and serves on."""
    with start_swapgate(config()) as gate:
        gate.proc.send_signal(signal.SIGHUP)
        message = "config reload (SIGHUP): the files are unchanged"
        wait_until(lambda: message in gate.output(), timeout=5, message="the SIGHUP log line")
        assert gate.proc.poll() is None
        assert gate.chat("alpha")[0] == 200
        assert gate.terminate() == 0
