"""Model servers that misbehave: each fault gets its exact status, the next normal request is
answered, and no process or file descriptor is left behind.

One swapgate serves every faulty model and a healthy one; after each case `good` must answer,
the only model processes left are the running model's, and swapgate's descriptors return to
what they were.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
from collections.abc import Iterator

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import (
    SseEvent,
    fake_upstream_argv,
    free_port,
    http_json,
    iter_sse,
    kill_group,
    pids_alive,
    spawn,
    wait_until,
)

pytestmark = pytest.mark.integration

SQUATTED_PORT = free_port()
CONFIG = f"""
healthCheckTimeout: 15
models:
  good:
    cmd: {fake_cmd("good", startup_delay=0, ttft=0, tokens=2)}
  crashes-mid-stream:
    cmd: {fake_cmd("crashes-mid-stream", tokens=10, token_interval=0.02, exit_after=3)}
  exits-at-once:
    cmd: {fake_cmd("exits-at-once", exit_on_start=7)}
  ignores-sigterm:
    cmd: {fake_cmd("ignores-sigterm", ignore_sigterm=True)}
    unloadTimeout: 1
  never-healthy:
    cmd: {fake_cmd("never-healthy", fail_health=True)}
  port-taken:
    cmd: {fake_cmd("port-taken").replace("${PORT}", str(SQUATTED_PORT))}
    proxy: http://127.0.0.1:{SQUATTED_PORT}
"""
CHAT = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture
def gate() -> Iterator[Swapgate]:
    with start_swapgate(CONFIG) as running:
        assert running.chat("good")[0] == 200
        yield running


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _left_clean(gate: Swapgate, fds: int) -> None:
    """`good` answers; afterwards only its own server runs, and descriptors are back."""
    assert gate.chat("good")[0] == 200
    models = [m for m, r in gate.running().items() if r["state"] in ("starting", "ready")]
    assert models == ["good"]
    pid = gate.running()["good"]["pid"]
    assert set(gate.descendants()) <= {pid, *_group(pid)}
    wait_until(lambda: _fds(gate.proc.pid) <= fds, timeout=10, message=f"fds back to {fds}")


def _group(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
            except ProcessLookupError:
                continue
    return members


def _answers(port: int) -> bool:
    try:
        return http_json("GET", f"http://127.0.0.1:{port}/health", timeout=1.0)[0] == 200
    except OSError:
        return False


def _stream(gate: Swapgate, model: str) -> list[SseEvent]:
    return list(iter_sse(gate.url + "/v1/chat/completions", {"model": model, **CHAT}, timeout=30))


def test_a_crash_mid_stream_ends_the_stream_with_an_error_event(gate: Swapgate) -> None:
    fds = _fds(gate.proc.pid)
    events = _stream(gate, "crashes-mid-stream")
    assert sum('"content":" tok"' in e.data for e in events) == 3
    assert json.loads(events[-1].data)["error"]["type"] == "upstream_error"
    _left_clean(gate, fds)


def test_a_server_that_exits_at_once_is_a_503_with_its_exit_code(gate: Swapgate) -> None:
    fds = _fds(gate.proc.pid)
    status, _, body = gate.chat("exits-at-once")
    assert status == 503
    assert "7" in body["error"]["message"]
    _left_clean(gate, fds)


def test_a_server_that_ignores_sigterm_is_killed_within_unload_timeout(gate: Swapgate) -> None:
    fds = _fds(gate.proc.pid)
    assert gate.chat("ignores-sigterm")[0] == 200
    pid = gate.running()["ignores-sigterm"]["pid"]
    assert gate.post("/api/models/unload/ignores-sigterm")[0] == 200
    wait_until(lambda: not pids_alive([pid]), timeout=5, message="the SIGKILL after 1 s")
    _left_clean(gate, fds)


def test_a_port_held_by_another_process_is_a_503_naming_it(gate: Swapgate) -> None:
    """A foreign server already answers on the model's port: swapgate does not take its
    answers for the model's and says which port is taken."""
    fds = _fds(gate.proc.pid)
    squatter = spawn(fake_upstream_argv(SQUATTED_PORT, model="squatter"))
    try:
        wait_until(lambda: _answers(SQUATTED_PORT), message="the squatter listening")
        status, _, body = gate.chat("port-taken")
        assert status == 503
        assert str(SQUATTED_PORT) in body["error"]["message"]
        assert squatter.poll() is None  # the foreign process is left alone
    finally:
        kill_group(squatter)
    _left_clean(gate, fds)


@pytest.mark.slow
def test_a_server_that_never_gets_healthy_is_a_503_after_health_check_timeout(
    gate: Swapgate,
) -> None:
    fds = _fds(gate.proc.pid)
    status, _, body = gate.chat("never-healthy")
    assert status == 503
    assert "did not become healthy" in body["error"]["message"]
    _left_clean(gate, fds)


def test_sigterm_with_20_streams_in_flight_lets_them_all_finish() -> None:
    config = f"""
shutdownTimeout: 20
models:
  alpha:
    cmd: {fake_cmd("alpha", tokens=30, token_interval=0.05)}
    concurrencyLimit: 0
"""
    with start_swapgate(config) as gate:
        assert gate.chat("alpha", max_tokens=1)[0] == 200
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            streams = [pool.submit(_stream, gate, "alpha") for _ in range(20)]
            wait_until(lambda: gate.running()["alpha"]["inFlight"] == 20, timeout=15)
            children = gate.descendants()
            gate.proc.send_signal(signal.SIGTERM)
            results = [s.result(timeout=30) for s in streams]
        assert gate.proc.wait(20) == 0
        for events in results:
            assert events[-1].data == "[DONE]"
            assert sum('"content":" tok"' in e.data for e in events) == 30
        assert pids_alive(children) == []
