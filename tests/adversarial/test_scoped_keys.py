"""`keys`: scopes, allowed models and per-key limits on a real swapgate; swapgate's key never
reaches a model server unless it opts in; logs and --print-config show names, never keys."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import SWAPGATE, Swapgate, fake_cmd, start_swapgate
from tests.support.procs import child_env, iter_sse, wait_until

pytestmark = pytest.mark.integration

CHAT = "sk-chat-0123456789"  # test keys, looked for in the output
OPS = "sk-ops-0123456789"
ALPHA_ONLY = "sk-alpha-0123456789"
ONE_AT_A_TIME = "sk-single-0123456789"
TWO_A_MINUTE = "sk-slow-0123456789"
FULL = "sk-full-0123456789"
SECRETS = (CHAT, OPS, ALPHA_ONLY, ONE_AT_A_TIME, TWO_A_MINUTE, FULL)

CONFIG = f"""
apiKeys: [{FULL}]
keys:
  - {{key: "${{env.CHAT_KEY}}", name: chat}}
  - {{key: {OPS}, name: ops, scopes: [admin, logs]}}
  - {{key: {ALPHA_ONLY}, name: alpha-only, models: [alpha]}}
  - {{key: {ONE_AT_A_TIME}, name: single, maxConcurrent: 1}}
  - {{key: {TWO_A_MINUTE}, name: slow, requestsPerMinute: 2}}
models:
  alpha:
    cmd: {fake_cmd("alpha", tokens=40, token_interval=0.05)}
  bravo:
    cmd: {fake_cmd("bravo")}
    forwardApiKey: true
"""


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def gate() -> Iterator[Swapgate]:
    """A swapgate for the test (its keys read CHAT_KEY from the environment)."""
    with start_swapgate(CONFIG, extra_env={"CHAT_KEY": CHAT}) as running:
        yield running


def test_scopes_decide_which_endpoints_a_key_reaches(gate: Swapgate) -> None:
    """An inference key chats but gets 403 naming the scope on unload and /logs (Anthropic's
    shape on /v1/messages); an admin+logs key reads /logs and /running but cannot chat."""
    status, _, body = gate.chat("alpha", headers=auth(CHAT), stream=False)
    assert status == 200, body
    status, _, body = gate.post("/api/models/unload", headers=auth(CHAT))
    assert status == 403
    assert body["error"]["code"] == "insufficient_scope"
    assert "'admin' scope" in body["error"]["message"]
    status, _, body = gate.get("/logs", headers={"x-api-key": CHAT})
    assert (status, body["error"]["code"]) == (403, "insufficient_scope")
    assert "'logs' scope" in body["error"]["message"]
    status, _, text = gate.get("/logs", headers=auth(OPS))
    assert status == 200
    assert isinstance(text, str)
    assert gate.get("/running", headers=auth(OPS))[0] == 200
    messages = {"model": "alpha", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    status, _, body = gate.post("/v1/messages", messages, headers={"x-api-key": OPS})
    assert status == 403
    assert body["type"] == "error"
    assert body["error"]["type"] == "permission_error"
    assert gate.get("/health")[0] == 200
    assert gate.get("/v1/models")[0] == 401


def test_a_key_sees_and_uses_only_its_models(gate: Swapgate) -> None:
    """A key limited to alpha: bravo is 404 model_not_found as if unconfigured (chat, retrieve,
    /upstream), absent from /v1/models and from every error's list of known models."""
    status, _, body = gate.chat("bravo", headers=auth(ALPHA_ONLY))
    assert (status, body["error"]["code"]) == (404, "model_not_found")
    assert "bravo" not in body["error"]["message"].replace("'bravo'", "")
    status, _, body = gate.chat("nope", headers=auth(ALPHA_ONLY))
    assert status == 404
    assert "known models: alpha " in body["error"]["message"]
    _, _, listed = gate.get("/v1/models", headers=auth(ALPHA_ONLY))
    assert [m["id"] for m in listed["data"]] == ["alpha"]
    assert gate.get("/v1/models/bravo", headers=auth(ALPHA_ONLY))[0] == 404
    assert gate.get("/v1/models/alpha", headers=auth(ALPHA_ONLY))[0] == 200
    assert gate.get("/upstream/bravo/echo", headers=auth(ALPHA_ONLY))[0] == 404
    _, _, everything = gate.get("/v1/models", headers=auth(CHAT))
    assert [m["id"] for m in everything["data"]] == ["alpha", "bravo"]
    assert "bravo" not in {
        r["model"] for r in gate.get("/running", headers=auth(OPS))[2]["running"]
    }


def test_max_concurrent_refuses_a_second_request_while_one_streams(gate: Swapgate) -> None:
    """maxConcurrent 1: while a stream runs, the next request of that key is 429 with
    Retry-After 1; once the stream has ended, the key may send again."""
    chat = {"model": "alpha", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    first_event = threading.Event()
    events: list[str] = []

    def stream() -> None:
        for event in iter_sse(gate.url + "/v1/chat/completions", chat, auth(ONE_AT_A_TIME), 30):
            events.append(event.data)
            first_event.set()

    runner = threading.Thread(target=stream)
    runner.start()
    try:
        assert first_event.wait(30), "the first stream did not start"
        status, headers, body = gate.chat("alpha", headers=auth(ONE_AT_A_TIME))
        assert status == 429, body
        assert headers["retry-after"] == "1"
        assert body["error"]["code"] == "key_concurrency_limit"
        assert gate.chat("alpha", headers=auth(CHAT))[0] == 200  # other keys are not held up
    finally:
        runner.join(30)
    assert events[-1] == "[DONE]"
    status, _, body = gate.chat("alpha", headers=auth(ONE_AT_A_TIME))
    assert status == 200, body


def test_requests_per_minute_refuses_the_third_request(gate: Swapgate) -> None:
    """requestsPerMinute 2: two requests pass, the third in the minute is 429 with the
    seconds until the bucket has a token again."""
    assert gate.get("/v1/models", headers=auth(TWO_A_MINUTE))[0] == 200
    assert gate.get("/v1/models", headers=auth(TWO_A_MINUTE))[0] == 200
    status, headers, body = gate.get("/v1/models", headers=auth(TWO_A_MINUTE))
    assert status == 429
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(headers["retry-after"]) <= 30


def test_the_client_key_stays_here_unless_the_model_opts_in(gate: Swapgate) -> None:
    """alpha's server sees neither Authorization nor x-api-key; bravo (forwardApiKey: true)
    gets them as sent; other headers pass either way."""
    headers = {**auth(FULL), "x-api-key": FULL, "x-trace": "t1"}
    status, _, echo = gate.get("/upstream/alpha/echo", headers=headers)
    assert status == 200, echo
    assert "authorization" not in echo["headers"]
    assert "x-api-key" not in echo["headers"]
    assert echo["headers"]["x-trace"] == "t1"
    status, _, echo = gate.get("/upstream/bravo/echo", headers=headers)
    assert status == 200, echo
    assert (echo["headers"]["authorization"], echo["headers"]["x-api-key"]) == (
        f"Bearer {FULL}",
        FULL,
    )


def test_logs_show_key_names_never_keys(gate: Swapgate) -> None:
    """The access line carries the key's name (`apiKeys[0]` for an apiKeys entry); no key
    appears anywhere in swapgate's output or in /logs."""
    assert gate.chat("alpha", headers=auth(CHAT))[0] == 200
    assert gate.get("/v1/models", headers={"x-api-key": FULL})[0] == 200
    assert gate.get("/running", headers=auth(OPS))[0] == 200

    def names() -> set[str]:
        return {
            line.split(" key=", 1)[1].split(" ", 1)[0]
            for line in gate.output().splitlines()
            if "swapgate.access:" in line and " key=" in line
        }

    wait_until(lambda: {"chat", "ops", "apiKeys[0]"} <= names(), timeout=10, message="key names")
    _, _, logs = gate.get("/logs", headers=auth(OPS))
    for secret in SECRETS:
        assert secret not in gate.output()
        assert secret not in logs


def test_print_config_masks_keys(tmp_path: Path) -> None:
    """--print-config masks every keys[].key; --show-secrets prints them."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    argv = [SWAPGATE, "--config", str(config), "--print-config"]
    env = child_env({"CHAT_KEY": CHAT})
    shown = subprocess.run(argv, capture_output=True, text=True, env=env, check=True, timeout=60)
    keys = json.loads(shown.stdout)["keys"]
    assert [k["key"] for k in keys] == ["sk-…6789"] * 5
    assert not any(secret in shown.stdout for secret in SECRETS)
    clear = subprocess.run(
        [*argv, "--show-secrets"], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    assert [k["key"] for k in json.loads(clear.stdout)["keys"]] == [
        CHAT,
        OPS,
        ALPHA_ONLY,
        ONE_AT_A_TIME,
        TWO_A_MINUTE,
    ]
