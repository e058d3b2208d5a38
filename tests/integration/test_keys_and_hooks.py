"""apiKeys protect every endpoint but /health; hooks.on_startup.preload starts models early."""

from __future__ import annotations

import base64

import pytest

from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.procs import wait_until

pytestmark = pytest.mark.integration

CONFIG = f"""
apiKeys: [sk-one, sk-two]
hooks:
  on_startup:
    preload: [a]
models:
  alpha:
    cmd: {fake_cmd("alpha")}
    aliases: [a]
"""


def test_requests_need_one_of_the_api_keys() -> None:
    """No or a wrong key is 401 (OpenAI-shaped); Bearer, x-api-key and Basic all work."""
    with start_swapgate(CONFIG) as gate:
        assert gate.get("/health")[0] == 200
        status, headers, body = gate.chat("alpha")
        assert status == 401
        assert body["error"]["code"] == "invalid_api_key"
        assert headers["www-authenticate"].startswith("Bearer")
        assert gate.chat("alpha", headers={"Authorization": "Bearer sk-nope"})[0] == 401
        assert gate.get("/running")[0] == 401
        basic = base64.b64encode(b"user:sk-two").decode()
        for header in (
            {"Authorization": "Bearer sk-one"},
            {"x-api-key": "sk-two"},
            {"Authorization": f"Basic {basic}"},
        ):
            status, _, body = gate.chat("alpha", headers=header)
            assert status == 200, body
        assert gate.get("/v1/models", headers={"Authorization": "Bearer sk-one"})[0] == 200


def test_preload_starts_models_at_startup() -> None:
    """A model named (by alias) under hooks.on_startup.preload is running with no request."""
    with start_swapgate(CONFIG) as gate:

        def state() -> str | None:
            _, _, body = gate.get("/running", headers={"x-api-key": "sk-one"})
            states = {str(r["model"]): str(r["state"]) for r in body["running"]}
            return states.get("alpha")

        wait_until(lambda: state() == "ready", timeout=10, message="alpha preloaded")
