"""The fake upstream, driven as a real subprocess on 127.0.0.1 through tests/support/procs."""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import signal
import time

import anthropic
import openai
import pytest

from tests.support.procs import (
    SseEvent,
    children_of,
    http_json,
    iter_sse,
    pids_alive,
    start_fake_upstream,
    wait_until,
)

pytestmark = pytest.mark.integration

LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
CHAT = {"model": "client-model", "messages": [{"role": "user", "content": "say something"}]}


def _content(events: list[SseEvent]) -> list[SseEvent]:
    """The chat chunks that carry generated text."""
    return [
        e
        for e in events
        if e.data != "[DONE]"
        and json.loads(e.data)["choices"][0:1]
        and json.loads(e.data)["choices"][0]["delta"].get("content")
    ]


def test_health_is_503_while_loading_then_200() -> None:
    """/health (and the API) answer llama-server's 503 until --startup-delay has passed."""
    spawned = time.monotonic()
    with start_fake_upstream(startup_delay=0.6) as fake:
        assert http_json("GET", fake.url + "/health")[::2] == (503, LOADING)
        assert http_json("POST", fake.url + "/v1/chat/completions", CHAT)[0] == 503
        wait_until(fake.is_healthy, message="health 200")
        assert time.monotonic() - spawned >= 0.6
        assert http_json("GET", fake.url + "/health")[::2] == (200, {"status": "ok"})
        assert http_json("POST", fake.url + "/v1/chat/completions", CHAT)[0] == 200


def test_fail_health_keeps_health_503_while_api_answers() -> None:
    """--fail-health makes /health 503 forever, while the API still works."""
    with start_fake_upstream(fail_health=True) as fake:
        assert http_json("GET", fake.url + "/health")[0] == 503
        assert http_json("GET", fake.url + "/v1/models")[0] == 200
        assert http_json("GET", fake.url + "/health")[0] == 503


def test_exit_on_start_exits_with_code_and_message() -> None:
    """--exit-on-start CODE exits at once with CODE and a fatal line on stderr."""
    with start_fake_upstream(exit_on_start=7) as fake:
        assert fake.proc.wait(10) == 7
        assert "fatal: cannot load model (simulated)" in fake.output()


def test_models_lists_the_configured_model_and_headers_tag_it() -> None:
    """/v1/models lists --model and every response carries x-fake-model and x-fake-pid."""
    with start_fake_upstream(model="m-one") as fake:
        status, headers, body = http_json("GET", fake.url + "/v1/models")
        assert status == 200
        assert [m["id"] for m in body["data"]] == ["m-one"]
        assert headers["x-fake-model"] == "m-one"
        assert headers["x-fake-pid"] == str(fake.proc.pid)
        assert "GET /v1/models" in fake.output()


def test_chat_json_waits_ttft_plus_tokens_and_reports_usage() -> None:
    """A non-streaming chat answer has the OpenAI shape, echoes the model, and takes its time."""
    with start_fake_upstream(say="alpha", tokens=3, ttft=0.1, token_interval=0.05) as fake:
        started = time.monotonic()
        status, _, body = http_json("POST", fake.url + "/v1/chat/completions", CHAT)
        assert time.monotonic() - started >= 0.25
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "client-model"
    assert {"id", "created"} <= body.keys()
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": " alpha alpha alpha"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 3
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 3


def test_max_tokens_below_tokens_cuts_the_answer() -> None:
    """A request max_tokens smaller than --tokens wins, with finish_reason length."""
    with start_fake_upstream(tokens=10) as fake:
        _, _, chat = http_json("POST", fake.url + "/v1/chat/completions", {**CHAT, "max_tokens": 2})
        _, _, text = http_json(
            "POST", fake.url + "/v1/completions", {"prompt": "x", "max_tokens": 1}
        )
    assert chat["choices"][0]["message"]["content"] == " tok tok"
    assert chat["choices"][0]["finish_reason"] == "length"
    assert text["choices"][0]["text"] == " tok"


def test_chat_stream_chunks_arrive_spaced_in_time() -> None:
    """Each SSE chunk is flushed when produced: arrivals are token-interval apart."""
    with start_fake_upstream(tokens=4, ttft=0.2, token_interval=0.15) as fake:
        started = time.monotonic()
        events = list(iter_sse(fake.url + "/v1/chat/completions", {**CHAT, "stream": True}))
    first = json.loads(events[0].data)["choices"][0]
    assert first["delta"]["role"] == "assistant"
    assert events[0].at - started >= 0.2
    tokens = _content(events)
    assert len(tokens) == 4
    gaps = [b.at - a.at for a, b in itertools.pairwise(tokens)]
    assert min(gaps) >= 0.1, gaps
    final = json.loads(events[-2].data)["choices"][0]
    assert final["finish_reason"] == "stop"
    assert events[-1].data == "[DONE]"


def test_stream_usage_chunk_only_when_asked() -> None:
    """stream_options.include_usage adds a choices-less usage chunk before [DONE]."""
    with start_fake_upstream(tokens=3) as fake:
        url = fake.url + "/v1/chat/completions"
        plain = list(iter_sse(url, {**CHAT, "stream": True}))
        asked = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        with_usage = list(iter_sse(url, asked))
    assert all("usage" not in json.loads(e.data) for e in plain[:-1])
    usage_chunk = json.loads(with_usage[-2].data)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 3


def test_text_completion_stream_and_openai_client_parse() -> None:
    """/v1/completions streams text chunks, and the official openai client reads chat streams."""
    with start_fake_upstream(say="beta", tokens=3) as fake:
        events = list(iter_sse(fake.url + "/v1/completions", {"prompt": "a", "stream": True}))
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="unused", max_retries=0)
        with client:
            stream = client.chat.completions.create(
                model="client-model", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert [json.loads(e.data)["choices"][0]["text"] for e in events[:3]] == [" beta"] * 3
    assert text == " beta beta beta"


def test_embeddings_are_deterministic_in_float_and_base64() -> None:
    """/v1/embeddings returns one stable vector per input, also in the client's base64 form."""
    with start_fake_upstream() as fake:
        body = {"model": "emb", "input": ["one", "two"]}
        _, _, first = http_json("POST", fake.url + "/v1/embeddings", body)
        _, _, again = http_json("POST", fake.url + "/v1/embeddings", body)
        with openai.OpenAI(base_url=fake.url + "/v1", api_key="unused", max_retries=0) as client:
            via_client = client.embeddings.create(model="emb", input=["one", "two"])
    assert first == again
    assert first["object"] == "list"
    vectors = [d["embedding"] for d in first["data"]]
    assert len(vectors) == 2
    assert vectors[0] != vectors[1]
    assert [d.embedding for d in via_client.data] == vectors


def test_anthropic_client_messages_plain_stream_and_count() -> None:
    """The official anthropic client parses /v1/messages as JSON and as its SSE sequence."""
    with start_fake_upstream(say="gamma", tokens=3, token_interval=0.01) as fake:
        client = anthropic.Anthropic(base_url=fake.url, api_key="unused", max_retries=0)
        with client:
            messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
            plain = client.messages.create(model="claude-x", max_tokens=100, messages=messages)
            with client.messages.stream(
                model="claude-x", max_tokens=2, messages=messages
            ) as stream:
                streamed = "".join(stream.text_stream)
                final = stream.get_final_message()
            counted = client.messages.count_tokens(model="claude-x", messages=messages)
    assert plain.model == "claude-x"
    assert plain.content[0].type == "text"
    assert plain.content[0].text == " gamma gamma gamma"
    assert plain.stop_reason == "end_turn"
    assert plain.usage.output_tokens == 3
    assert streamed == " gamma gamma"
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 2
    assert counted.input_tokens >= 1


def test_unknown_paths_echo_what_arrived() -> None:
    """Any other path/method echoes method, raw path and query, headers and a body hash."""
    payload = bytes(range(256)) * 10
    with start_fake_upstream(model="echoer") as fake:
        status, _, echo = http_json(
            "POST",
            fake.url + "/v1/rerank?b=%20x&a=1",
            payload,
            headers={"X-Custom": "v1", "Content-Type": "application/octet-stream"},
        )
        _, _, get_echo = http_json("GET", fake.url + "/v1/chat/completions")
    assert status == 200
    assert echo["echo"] is True
    assert (echo["method"], echo["path"], echo["query"]) == ("POST", "/v1/rerank", "b=%20x&a=1")
    assert echo["model"] == "echoer"
    assert echo["content_type"] == "application/octet-stream"
    assert echo["body_bytes"] == len(payload)
    assert echo["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert echo["headers"]["x-custom"] == "v1"
    assert (get_echo["method"], get_echo["path"]) == ("GET", "/v1/chat/completions")


def test_multipart_upload_is_echoed_byte_for_byte() -> None:
    """A multipart audio upload reaches the echo with its exact length and hash."""
    boundary = "fakeboundary42"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + os.urandom(50_000)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = f"multipart/form-data; boundary={boundary}"
    with start_fake_upstream() as fake:
        url = fake.url + "/v1/audio/transcriptions"
        _, _, echo = http_json("POST", url, body, headers={"Content-Type": content_type})
    assert echo["content_type"] == content_type
    assert echo["body_bytes"] == len(body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_exit_after_crashes_mid_stream() -> None:
    """--exit-after N sends N tokens, then the process dies with status 3 and no [DONE]."""
    with start_fake_upstream(tokens=10, token_interval=0.02, exit_after=2) as fake:
        events: list[SseEvent] = []
        with pytest.raises(http.client.IncompleteRead):  # noqa: PT012
            for event in iter_sse(fake.url + "/v1/chat/completions", {**CHAT, "stream": True}):
                events.append(event)  # noqa: PERF402  # keep what arrived before the crash
        assert fake.proc.wait(10) == 3
    assert len(_content(events)) == 2
    assert all(e.data != "[DONE]" for e in events)


def test_sigterm_stops_it_unless_ignored() -> None:
    """SIGTERM stops a normal fake; with --ignore-sigterm only SIGKILL does."""
    with start_fake_upstream() as fake:
        fake.proc.send_signal(signal.SIGTERM)
        assert fake.proc.wait(10) == 0
    with start_fake_upstream(ignore_sigterm=True) as fake:
        fake.proc.send_signal(signal.SIGTERM)
        assert http_json("GET", fake.url + "/health")[0] == 200
        assert fake.proc.poll() is None
        fake.proc.send_signal(signal.SIGKILL)
        assert fake.proc.wait(10) == -signal.SIGKILL


def test_stats_count_one_connection_for_keep_alive_requests() -> None:
    """Two requests on one keep-alive connection count as one TCP connection."""
    with start_fake_upstream() as fake:
        before = fake.stats()
        conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
        try:
            for _ in range(2):
                conn.request("GET", "/v1/models")
                assert conn.getresponse().read()
            conn.request("GET", "/debug/stats")
            after = json.loads(conn.getresponse().read())
        finally:
            conn.close()
    assert after["connections_opened"] == before["connections_opened"] + 1
    assert after["requests"] == before["requests"] + 2
    assert after["pid"] == fake.proc.pid


def test_stats_count_completed_and_cancelled_streams() -> None:
    """A finished stream counts as completed, one the client drops as cancelled."""
    with start_fake_upstream(tokens=200, token_interval=0.01) as fake:
        list(iter_sse(fake.url + "/v1/chat/completions", {**CHAT, "stream": True, "max_tokens": 2}))
        stream = iter_sse(fake.url + "/v1/chat/completions", {**CHAT, "stream": True})
        next(stream), next(stream)
        stream.close()  # closes the connection mid-stream
        stats = wait_until(lambda: (s := fake.stats())["streams_cancelled"] == 1 and s)
    assert stats["streams_started"] == 2
    assert stats["streams_completed"] == 1
    assert stats["streams_active"] == 0


def test_exit_of_the_context_leaves_no_process_behind() -> None:
    """The fake is our child while running and is gone (reaped) after the block."""
    with start_fake_upstream() as fake:
        pid = fake.proc.pid
        assert pid in children_of(os.getpid())
        assert pids_alive([pid]) == [pid]
    assert pids_alive([pid]) == []
    assert pid not in children_of(os.getpid())
