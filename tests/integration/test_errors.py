"""Client and backend errors come back OpenAI-shaped with the right status; nothing leaks."""

from __future__ import annotations

import sys

import pytest

from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.procs import free_port

pytestmark = pytest.mark.integration


def error_of(body: object) -> dict[str, str]:
    assert isinstance(body, dict)
    error: dict[str, str] = body["error"]
    assert set(error) == {"message", "type", "code"}
    return error


CONFIG = f"""
maxRequestBytes: 2000
models:
  alpha:
    cmd: {fake_cmd("alpha")}
  crashy:
    cmd: {fake_cmd("crashy", exit_on_start=3)}
  missing:
    cmd: /nonexistent/llama-server --port ${{PORT}}
  refused:
    cmd: {sys.executable} -c "import time; time.sleep(60)"
    proxy: http://127.0.0.1:{free_port()}
    checkEndpoint: none
"""


def test_bad_requests_get_400_404_and_413() -> None:
    """Malformed JSON, a missing model, an unknown model and an oversized body."""
    with start_swapgate(CONFIG) as gate:
        status, _, body = gate.post(
            "/v1/chat/completions", b"{not json", headers={"Content-Type": "application/json"}
        )
        assert status == 400
        assert "not valid JSON" in error_of(body)["message"]

        status, _, body = gate.post("/v1/chat/completions", {"messages": []})
        assert status == 400
        assert error_of(body)["code"] == "missing_model"

        status, _, body = gate.post("/v1/chat/completions", {"model": "gpt-5"})
        assert status == 404
        message = error_of(body)["message"]
        assert "gpt-5" in message
        assert "known models: alpha, crashy, missing, refused" in message

        status, _, body = gate.post("/v1/chat/completions", {"model": "alpha", "pad": "x" * 3000})
        assert status == 413
        assert "maxRequestBytes" in error_of(body)["message"]
        assert gate.running() == {}  # none of these started a model


def test_a_model_that_exits_during_startup_gives_503_with_its_output() -> None:
    """The 503 names the exit code and carries the server's last log lines; no process leaks."""
    with start_swapgate(CONFIG) as gate:
        status, _, body = gate.chat("crashy")
        assert status == 503
        error = error_of(body)
        assert error["code"] == "backend_start_failed"
        assert "exited with code 3 during startup" in error["message"]
        assert "cannot load model (simulated)" in error["message"]
        assert gate.descendants() == []
        assert gate.chat("alpha")[0] == 200  # swapgate itself is fine


def test_a_command_that_does_not_exist_gives_503_naming_it() -> None:
    """A cmd whose program is missing fails at once with a message that says which."""
    with start_swapgate(CONFIG) as gate:
        status, _, body = gate.chat("missing")
        assert status == 503
        message = error_of(body)["message"]
        assert "/nonexistent/llama-server" in message
        assert "models.missing.cmd" in message


def test_an_upstream_that_refuses_connections_gives_502() -> None:
    """A backend whose proxy URL has nobody listening answers 502, not a hang."""
    with start_swapgate(CONFIG) as gate:
        status, _, body = gate.chat("refused")
        assert status == 502
        assert error_of(body)["type"] == "upstream_error"


@pytest.mark.timeout(60)
def test_a_model_that_never_becomes_healthy_times_out_with_503() -> None:
    """healthCheckTimeout (15 s minimum, as in llama-swap) ends the wait with a 503."""
    config = f"""
healthCheckTimeout: 15
models:
  stuck:
    cmd: {fake_cmd("stuck", fail_health=True)}
"""
    with start_swapgate(config) as gate:
        status, _, body = gate.chat("stuck")
        assert status == 503
        assert "did not become healthy" in error_of(body)["message"]
        assert gate.descendants() == []


def test_unknown_endpoint_is_an_openai_shaped_404() -> None:
    """Paths swapgate does not serve answer 404 in the same error envelope."""
    with start_swapgate(CONFIG) as gate:
        status, _, body = gate.get("/v2/nothing")
        assert status == 404
        assert error_of(body)["code"] == "not_found"
