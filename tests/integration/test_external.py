"""Models without `cmd`: servers swapgate reaches but never starts or stops."""

from __future__ import annotations

import time

import pytest

from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.procs import (
    fake_upstream_argv,
    free_port,
    kill_group,
    spawn,
    start_fake_upstream,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_external_model_is_served_never_started_and_never_evicted() -> None:
    """An always-on server is probed, served, listed as external, and survives a swap."""
    with start_fake_upstream(model="remote", say="remote") as remote:
        config = f"""
models:
  remote:
    proxy: {remote.url}
  local:
    cmd: {fake_cmd("local", say="local")}
"""
        with start_swapgate(config) as gate:
            status, _, body = gate.chat("remote")
            assert status == 200, body
            assert "remote" in body["choices"][0]["message"]["content"]
            record = gate.running()["remote"]
            assert (record["external"], record["pid"], record["state"]) == (True, None, "ready")
            assert gate.chat("local")[0] == 200  # would evict everything else if it could
            assert set(gate.running()) == {"remote", "local"}
            assert gate.post("/api/models/unload/remote")[0] == 200
            assert remote.proc.poll() is None  # unloading never touches the server itself
            assert gate.chat("remote")[0] == 200


def test_external_model_that_is_down_fails_fast_and_recovers() -> None:
    """A down external server gets 503 at once naming the URL; once it is up (and the 1 s
    back-off has passed) the next request is served."""
    port = free_port()
    config = f"models:\n  remote:\n    proxy: http://127.0.0.1:{port}\n"
    with start_swapgate(config) as gate:
        started = time.monotonic()
        status, _, body = gate.chat("remote")
        assert time.monotonic() - started < 5
        assert status == 503
        assert body["error"]["code"] == "backend_start_failed"
        assert f"http://127.0.0.1:{port}/health does not answer 200" in body["error"]["message"]
        server = spawn(fake_upstream_argv(port, model="remote", say="remote"))
        try:
            wait_until(lambda: gate.chat("remote")[0] == 200, timeout=10, interval=0.2)
        finally:
            kill_group(server)
