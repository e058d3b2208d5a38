"""HTTP edges through a real swapgate: the response model rewritten whatever the backend calls
itself, Anthropic-shaped errors on /v1/messages, GET /v1/models/{id} and the access log."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.support.gateway import SWAPGATE, Swapgate, fake_cmd, start_swapgate
from tests.support.procs import LOCALHOST, free_port, iter_sse, kill_group, spawn, wait_until

pytestmark = pytest.mark.integration

GGUF = "/models/alpha.gguf"  # what llama-server answers as `model`: its model file
TEXT = f'the "model": "{GGUF}" key'  # a model name inside content text stays as it is
PAUSE_S = 0.3  # between the first and second streamed chat event
DIE_AT = 13  # a `max_tokens` that makes the upstream drop the connection mid-stream


def _sse(event: str | None, payload: dict[str, Any]) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + json.dumps(payload, separators=(",", ":")) + "\n\n").encode()


def _chunk(delta: dict[str, Any], **choice: Any) -> dict[str, Any]:
    """An OpenAI chat chunk as llama-server writes it: `model` is the model file."""
    choices = [{"index": 0, "delta": delta, **choice}]
    return {"id": "c1", "object": "chat.completion.chunk", "model": GGUF, "choices": choices}


def _chat_stream() -> list[tuple[float, bytes]]:
    """(pause before, piece): the first event is cut inside its model value."""
    first = _sse(None, _chunk({"content": TEXT}, model=GGUF))
    second = _sse(None, _chunk({"content": " done"}, finish_reason="stop"))
    cut = first.index(b"alpha")
    return [(0, first[:cut]), (0.05, first[cut:]), (PAUSE_S, second), (0, b"data: [DONE]\n\n")]


def _message(content: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
    """An Anthropic message naming the model file."""
    usage = {"input_tokens": 1, "output_tokens": len(content)}
    head = {"id": "m1", "type": "message", "role": "assistant", "model": GGUF}
    return head | {"content": content, "stop_reason": stop_reason, "usage": usage}


def _event(name: str, **fields: Any) -> tuple[float, bytes]:
    return 0.0, _sse(name, {"type": name, **fields})


def _messages_stream() -> list[tuple[float, bytes]]:
    """Anthropic's event sequence; the model sits inside message_start's `message`."""
    end = {"stop_reason": "end_turn", "stop_sequence": None}
    return [
        _event("message_start", message=_message([], None)),
        _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        _event("content_block_delta", index=0, delta={"type": "text_delta", "text": "hello"}),
        _event("content_block_stop", index=0),
        _event("message_delta", delta=end, usage={"output_tokens": 1}),
        _event("message_stop"),
    ]


class GgufUpstream(BaseHTTPRequestHandler):
    """A llama-server stand-in that always names its model file, whatever it was asked."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base's name
        """Quiet: nothing on stderr."""

    def do_GET(self) -> None:
        self._json({"status": "ok"} if self.path == "/health" else {"error": "no"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        streaming = body.get("stream") is True
        if self.path == "/v1/chat/completions" and streaming:
            self._stream(_chat_stream())
        elif self.path == "/v1/messages" and streaming:
            self._stream(_messages_stream()[: 2 if body.get("max_tokens") == DIE_AT else None])
        elif self.path == "/v1/messages":
            self._json(_message([{"type": "text", "text": TEXT}], "end_turn"))
        else:
            message = {"role": "assistant", "content": TEXT}
            choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
            self._json({"id": "c2", "object": "chat.completion", "model": GGUF, "choices": choices})

    def _json(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, pieces: list[tuple[float, bytes]]) -> None:
        """Each piece as its own HTTP chunk, after its pause."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for pause, piece in pieces:
            time.sleep(pause)
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
        if len(pieces) == 2:  # cut short: die without the final chunk, as a crash would
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")


@contextlib.contextmanager
def gguf_upstream() -> Iterator[str]:
    """GgufUpstream on a free port, in a thread of this process; yields its base URL."""
    server = ThreadingHTTPServer((LOCALHOST, 0), GgufUpstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCALHOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def rewrite_config(upstream: str) -> str:
    return f"""
models:
  alpha:
    proxy: {upstream}
routes:
  - name: ab
    match: {{model: chat}}
    split:
      - {{to: alpha, weight: 1}}
    rewriteResponseModel: true
"""


def test_rewrite_replaces_a_gguf_path_in_json_and_every_sse_chunk() -> None:
    """The client sees the name it asked for in place of llama-server's file path, in a JSON
    reply and in every chunk, even one cut inside the value; nested copies stay; the stream
    stays incremental."""
    with gguf_upstream() as upstream, start_swapgate(rewrite_config(upstream)) as gate:
        status, headers, body = gate.chat("chat")
        assert (status, headers["x-swapgate-route"]) == (200, "ab/alpha"), body
        assert body["model"] == "chat"
        assert body["choices"][0]["message"]["content"] == TEXT
        chat = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        events = list(iter_sse(gate.url + "/v1/chat/completions", chat))
        chunks = [json.loads(e.data) for e in events if e.data != "[DONE]"]
        assert [c["model"] for c in chunks] == ["chat", "chat"]
        assert chunks[0]["choices"][0]["model"] == GGUF
        assert chunks[0]["choices"][0]["delta"]["content"] == TEXT
        assert events[1].at - events[0].at > PAUSE_S * 0.8  # not buffered to the end
        client = openai.OpenAI(base_url=gate.url + "/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert {chunk.model for chunk in stream} == {"chat"}
        client.close()


def test_rewrite_covers_anthropic_messages_and_their_stream() -> None:
    """Anthropic replies and message_start events name the asked model, via the official SDK."""
    with gguf_upstream() as upstream, start_swapgate(rewrite_config(upstream)) as gate:
        client = anthropic.Anthropic(base_url=gate.url, api_key="unused", max_retries=0)
        messages: Any = [{"role": "user", "content": "hi"}]
        message = client.messages.create(model="chat", max_tokens=8, messages=messages)
        assert message.model == "chat"
        with client.messages.stream(model="chat", max_tokens=8, messages=messages) as stream:
            final = stream.get_final_message()
        assert (final.model, final.content[0].type) == ("chat", "text")
        client.close()


def test_rewrite_applies_when_the_asked_name_is_the_upstream_name() -> None:
    """A rule that keeps the asked name still hides the backend's own name (its GGUF path)."""
    with gguf_upstream() as upstream:
        config = f"""
models:
  alpha:
    proxy: {upstream}
routes:
  - name: pin
    match: {{model: alpha}}
    to: alpha
    rewriteResponseModel: true
"""
        with start_swapgate(config) as gate:
            status, _, body = gate.chat("alpha")
            assert (status, body["model"]) == (200, "alpha")


def test_anthropic_stream_that_breaks_raises_in_the_sdk() -> None:
    """An upstream dying mid-stream on /v1/messages reaches the Anthropic SDK as an error
    event (`event: error`), not as a silently truncated stream."""
    with gguf_upstream() as upstream, start_swapgate(rewrite_config(upstream)) as gate:
        client = anthropic.Anthropic(base_url=gate.url, api_key="unused", max_retries=0)
        messages: Any = [{"role": "user", "content": "hi"}]
        with (
            pytest.raises(anthropic.APIStatusError) as caught,
            client.messages.stream(model="alpha", max_tokens=DIE_AT, messages=messages) as stream,
        ):
            stream.get_final_message()
        body: Any = caught.value.body
        assert (body["type"], body["error"]["type"]) == ("error", "api_error")
        client.close()


CONFIG = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", tokens=2)}
    name: Alpha
    aliases: [a]
  org/model:
    cmd: {fake_cmd("org/model")}
  hidden:
    cmd: {fake_cmd("hidden")}
    unlisted: true
routes:
  - name: tier
    match: {{model: chat}}
    to: alpha
"""


def test_anthropic_endpoints_answer_errors_in_anthropic_shape() -> None:
    """An unknown model on /v1/messages raises anthropic.NotFoundError carrying swapgate's
    message; the OpenAI endpoints keep OpenAI's envelope."""
    with start_swapgate(CONFIG) as gate:
        client = anthropic.Anthropic(base_url=gate.url, api_key="unused", max_retries=0)
        messages: Any = [{"role": "user", "content": "hi"}]
        with pytest.raises(anthropic.NotFoundError) as caught:
            client.messages.create(model="nope", max_tokens=8, messages=messages)
        assert caught.value.status_code == 404
        body: Any = caught.value.body
        assert body["type"] == "error"
        assert body["error"]["type"] == "not_found_error"
        assert "model 'nope' is not configured" in body["error"]["message"]
        with pytest.raises(anthropic.NotFoundError):
            client.messages.count_tokens(model="nope", messages=messages)
        client.close()
        status, _, missing = gate.post("/v1/messages/nothing-here", {})
        assert (status, missing["error"]["type"]) == (404, "not_found_error")
        status, _, bad = gate.post(
            "/v1/messages", b"{not json", headers={"Content-Type": "application/json"}
        )
        assert (status, bad["type"], bad["error"]["type"]) == (
            400,
            "error",
            "invalid_request_error",
        )
        status, _, openai_shape = gate.chat("nope")
        assert status == 404
        assert openai_shape["error"]["code"] == "model_not_found"


def test_models_retrieve_by_id_alias_and_unlisted_name() -> None:
    """client.models.retrieve gives the listed record for an id or alias (ids with '/' too)
    and an unlisted model by name; anything else is 404 model_not_found."""
    with start_swapgate(CONFIG) as gate:
        client = openai.OpenAI(base_url=gate.url + "/v1", api_key="unused", max_retries=0)
        alpha = client.models.retrieve("alpha")
        assert (alpha.id, alpha.object, alpha.owned_by) == ("alpha", "model", "swapgate")
        assert client.models.retrieve("a").id == "a"
        assert client.models.retrieve("org/model").id == "org/model"
        assert client.models.retrieve("hidden").id == "hidden"
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve("nope")
        body: Any = caught.value.body
        assert body["code"] == "model_not_found"
        client.close()
        status, _, record = gate.get("/v1/models/org/model")
        assert (status, record["id"]) == (200, "org/model")
        _, _, listed = gate.get("/v1/models")
        by_id = {r["id"]: r for r in listed["data"]}
        assert {**record, "created": 0} == {**by_id["org/model"], "created": 0}
        assert gate.running() == {}  # nothing was started


ACCESS = re.compile(
    r"swapgate\.access: (?P<method>\S+) (?P<path>\S+) key=(?P<key>\S+) model=(?P<model>\S+) "
    r"backend=(?P<backend>\S+) route=(?P<route>\S+) status=(?P<status>\d+) "
    r"ttfb_ms=(?P<ttfb>[\d.]+) duration_ms=(?P<duration>[\d.]+) bytes=(?P<bytes>\d+)$",
    re.MULTILINE,
)


def access_lines(output: str) -> list[dict[str, str]]:
    return [m.groupdict() for m in ACCESS.finditer(output)]


def test_access_log_has_one_line_per_request() -> None:
    """Each request, streamed or not, routed or not, gets one complete line at info level."""
    with start_swapgate(CONFIG) as gate:
        assert gate.chat("chat")[0] == 200
        chat = {"model": "alpha", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        assert len(list(iter_sse(gate.url + "/v1/chat/completions", chat))) >= 2
        assert gate.get("/v1/models/nope")[0] == 404

        def lines() -> list[dict[str, str]]:
            found = access_lines(gate.output())
            return found if len([f for f in found if f["path"] != "/health"]) >= 3 else []

        found = [
            line for line in wait_until(lines, message="access lines") if line["path"] != "/health"
        ]
        routed, streamed, missing = found
        assert routed["path"] == "/v1/chat/completions"
        assert (routed["backend"], routed["route"], routed["status"]) == ("alpha", "tier", "200")
        assert routed["model"] in {"chat", "-"}  # see the next test
        assert (streamed["backend"], streamed["route"]) == ("alpha", "-")
        assert int(streamed["bytes"]) > 0
        assert float(streamed["ttfb"]) <= float(streamed["duration"])
        assert (missing["method"], missing["path"], missing["status"]) == (
            "GET",
            "/v1/models/nope",
            "404",
        )


def test_access_log_names_the_model_the_client_asked_for() -> None:
    """A routed request's line shows the asked name next to the backend that served it."""
    with start_swapgate(CONFIG) as gate:
        assert gate.chat("chat")[0] == 200
        # The line is written after the last byte went out, so it may trail the answer; the
        # readiness probe's /health line is not the one to look at.
        found = wait_until(
            lambda: [ln for ln in access_lines(gate.output()) if ln["path"] != "/health"],
            message="the chat request's access line",
        )
        assert (found[0]["model"], found[0]["backend"]) == ("chat", "alpha")


def test_no_access_log_flag_turns_the_lines_off(tmp_path: Path) -> None:
    """`swapgate --no-access-log` serves as usual and writes no access line."""
    config = tmp_path / "config.yaml"
    config.write_text(f"startPort: {free_port()}\n" + CONFIG)
    port, log_path = free_port(), tmp_path / "swapgate.log"
    argv = [SWAPGATE, "--config", str(config), "--listen", f"{LOCALHOST}:{port}"]
    with log_path.open("wb") as log:
        proc = spawn([*argv, "--no-access-log"], stdout=log, stderr=subprocess.STDOUT)
    gate = Swapgate(proc, port, log_path)
    try:
        wait_until(lambda: _models_answer(gate), message="swapgate serving")
        assert gate.get("/v1/models/alpha")[0] == 200  # starts no model
    finally:
        kill_group(proc)
    assert "swapgate.access" not in gate.output()


def _models_answer(gate: Swapgate) -> bool:
    if gate.proc.poll() is not None:
        msg = f"swapgate exited with {gate.proc.returncode}: {gate.output()}"
        raise RuntimeError(msg)
    try:
        return gate.get("/v1/models", timeout=1.0)[0] == 200
    except OSError:
        return False
