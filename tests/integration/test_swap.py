"""Swapping, single-flight starts, TTL and unload through a real swapgate and fake upstreams."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.procs import pids_alive, wait_until

pytestmark = pytest.mark.integration


def two_models(**flags: object) -> str:
    return f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", **flags)}
  bravo:
    cmd: {fake_cmd("bravo", say="bravo", **flags)}
    aliases: [b]
"""


def test_swap_runs_one_model_at_a_time_and_answers_from_the_right_one() -> None:
    """Asking for bravo while alpha runs stops alpha, starts bravo; each answer is its own."""
    with start_swapgate(two_models()) as gate:
        status, headers, body = gate.chat("alpha")
        assert status == 200, body
        assert "alpha" in body["choices"][0]["message"]["content"]
        assert headers["x-swapgate-model"] == "alpha"
        alpha_pid = gate.running()["alpha"]["pid"]

        status, _, body = gate.chat("b")
        assert status == 200, body
        assert "bravo" in body["choices"][0]["message"]["content"]
        assert list(gate.running()) == ["bravo"]
        assert pids_alive([alpha_pid]) == []

        status, _, body = gate.chat("alpha")
        assert "alpha" in body["choices"][0]["message"]["content"]
        assert list(gate.running()) == ["alpha"]


def test_swap_waits_for_in_flight_requests_of_the_old_model() -> None:
    """A request to alpha still generating when bravo is asked for completes in full."""
    config = two_models(tokens=10, token_interval=0.05)
    with start_swapgate(config) as gate, concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert gate.chat("alpha")[0] == 200
        slow = pool.submit(gate.chat, "alpha")
        wait_until(lambda: gate.running()["alpha"]["inFlight"] == 1, message="alpha in flight")
        status, _, body = gate.chat("bravo")
        assert status == 200
        slow_status, _, slow_body = slow.result()
        assert slow_status == 200
        assert slow_body["usage"]["completion_tokens"] == 10
        assert "bravo" in body["choices"][0]["message"]["content"]


def test_concurrent_requests_for_a_starting_model_share_one_start() -> None:
    """Ten requests arriving while a model loads all succeed and spawn exactly one server."""
    config = two_models(startup_delay=0.5)
    with start_swapgate(config) as gate, concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: gate.chat("alpha"), range(10)))
        assert [status for status, _, _ in results] == [200] * 10
        assert {headers["x-swapgate-model"] for _, headers, _ in results} == {"alpha"}
        assert gate.output().count("alpha: stopped -> starting") == 1


def test_ttl_unloads_an_idle_model_but_not_one_in_use() -> None:
    """With ttl: 1 the server stops about a second after its last request, not during one."""
    config = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", tokens=15, token_interval=0.1)}
    ttl: 1
"""
    with start_swapgate(config) as gate:
        started = time.monotonic()
        status, _, _ = gate.chat("alpha")  # 1.5 s of generation: longer than the ttl
        assert status == 200
        assert time.monotonic() - started >= 1.4
        assert "alpha" in gate.running()  # not unloaded while the request ran
        pid = gate.running()["alpha"]["pid"]
        wait_until(lambda: "alpha" not in gate.running(), timeout=4, message="ttl unload")
        assert pids_alive([pid]) == []
        assert gate.chat("alpha")[0] == 200  # and it starts again on demand


def test_unload_endpoints_stop_models() -> None:
    """POST /api/models/unload/{model} stops one model; POST /api/models/unload stops all."""
    with start_swapgate(two_models()) as gate:
        gate.chat("alpha")
        pid = gate.running()["alpha"]["pid"]
        status, _, body = gate.post("/api/models/unload/alpha")
        assert (status, body) == (200, "OK")
        assert gate.running() == {}
        assert pids_alive([pid]) == []
        gate.chat("bravo")
        status, _, body = gate.post("/api/models/unload")
        assert (status, body) == (200, {"msg": "ok"})
        assert gate.running() == {}
        status, _, body = gate.post("/api/models/unload/nope")
        assert status == 404
        assert "known models: alpha, bravo" in body["error"]["message"]


def test_a_crashed_model_backs_off_then_is_restarted_by_the_next_request() -> None:
    """A server that dies soon after starting shows as failed at once; requests get 503
    backend_failed with Retry-After during the 1 s back-off, then the next one restarts it."""
    import os
    import signal

    with start_swapgate(two_models()) as gate:
        gate.chat("alpha")
        pid = gate.running()["alpha"]["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: gate.running()["alpha"]["state"] == "failed", timeout=2)
        status, headers, body = gate.chat("alpha")
        assert status == 503, body
        assert body["error"]["code"] == "backend_failed"
        assert "exited on its own" in body["error"]["message"]
        assert headers["retry-after"] == "1"
        wait_until(lambda: gate.chat("alpha")[0] == 200, timeout=5, interval=0.2)
        assert gate.running()["alpha"]["pid"] != pid


def test_running_reports_llama_swap_fields() -> None:
    """GET /running has llama-swap's fields plus pid, port, since and inFlight."""
    with start_swapgate(two_models()) as gate:
        assert gate.running() == {}
        gate.chat("alpha")
        record = gate.running()["alpha"]
        assert record["state"] == "ready"
        assert record["proxy"] == f"http://localhost:{record['port']}"
        assert f"--port {record['port']}" in record["cmd"]
        assert set(record) >= {"model", "state", "cmd", "proxy", "ttl", "name", "description"}
        assert record["inFlight"] == 0
        assert abs(record["since"] - time.time()) < 60


def test_unload_gives_a_long_request_only_shutdown_timeout() -> None:
    """An unload during a 5 s generation waits shutdownTimeout (1 s), not the whole answer."""
    config = f"""
shutdownTimeout: 1
models:
  alpha:
    cmd: {fake_cmd("alpha", tokens=100, token_interval=0.05)}
"""
    with start_swapgate(config) as gate, concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert gate.chat("alpha", max_tokens=1)[0] == 200
        pool.submit(gate.chat, "alpha")
        wait_until(lambda: gate.running()["alpha"]["inFlight"] == 1, message="alpha in flight")
        started = time.monotonic()
        assert gate.post("/api/models/unload/alpha", timeout=10.0)[0] == 200
        assert 0.9 <= time.monotonic() - started < 4.0
        assert gate.running() == {}
