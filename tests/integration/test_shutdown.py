"""Shutdown paths: SIGTERM drains and stops children; SIGKILL of swapgate takes them along."""

from __future__ import annotations

import concurrent.futures
import signal

import pytest
from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.procs import pids_alive, wait_until

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
