"""Streaming and forwarding through a real swapgate: SSE timing, disconnects, crashes, pooling."""

from __future__ import annotations

import http.client
import itertools
import json
import socket

import pytest

from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.procs import LOCALHOST, iter_sse, wait_until

pytestmark = pytest.mark.integration

CHAT = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def one_model(**flags: object) -> str:
    return f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", **flags)}
"""


def test_sse_chunks_arrive_as_they_are_generated() -> None:
    """Ten tokens 100 ms apart reach the client spread over ~1 s, not in one burst."""
    with start_swapgate(one_model(tokens=10, token_interval=0.1)) as gate:
        events = list(iter_sse(gate.url + "/v1/chat/completions", CHAT))
        assert events[-1].data == "[DONE]"
        content = [e for e in events if '"content":" alpha"' in e.data]
        assert len(content) == 10
        gaps = sorted(b.at - a.at for a, b in itertools.pairwise(content))
        assert gaps[len(gaps) // 2] > 0.05  # they arrive one by one, not in one burst
        assert content[-1].at - content[0].at > 0.7


def test_client_disconnect_cancels_the_upstream_stream() -> None:
    """Closing the client socket mid-stream drops the upstream request and frees the lease."""
    with start_swapgate(one_model(tokens=500, token_interval=0.02)) as gate:
        conn = http.client.HTTPConnection(LOCALHOST, gate.port, timeout=10)
        conn.request(
            "POST", "/v1/chat/completions", json.dumps(CHAT), {"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        assert response.status == 200
        response.readline()
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()

        def cancelled() -> bool:
            _, _, stats = gate.get("/upstream/alpha/debug/stats")
            return bool(stats["streams_cancelled"] == 1 and stats["streams_active"] == 0)

        wait_until(cancelled, timeout=3, message="upstream stream cancelled")
        assert gate.running()["alpha"]["inFlight"] == 0


def test_upstream_crash_mid_stream_ends_with_an_error_event() -> None:
    """A server dying after 3 tokens: the client gets those tokens, then an error event."""
    with start_swapgate(one_model(tokens=10, token_interval=0.02, exit_after=3)) as gate:
        events = list(iter_sse(gate.url + "/v1/chat/completions", CHAT))
        content = [e for e in events if '"content":" alpha"' in e.data]
        assert len(content) == 3
        error = json.loads(events[-1].data)["error"]
        assert error["type"] == "upstream_error"
        assert "alpha" in error["message"]
        wait_until(lambda: gate.running()["alpha"]["state"] == "failed", timeout=2)
        # restarted once its 1 s crash back-off has passed; max_tokens stays under the crash point
        wait_until(lambda: gate.chat("alpha", max_tokens=2)[0] == 200, timeout=5, interval=0.2)


def test_keep_alive_connections_are_reused() -> None:
    """Twenty sequential requests reach the upstream over a single pooled connection."""
    with start_swapgate(one_model()) as gate:
        assert gate.chat("alpha")[0] == 200  # opens the pooled connection (after health probes)
        _, _, before = gate.get("/upstream/alpha/debug/stats")
        for _ in range(20):
            assert gate.chat("alpha")[0] == 200
        _, _, after = gate.get("/upstream/alpha/debug/stats")
        assert after["requests"] == before["requests"] + 20
        assert after["connections_opened"] == before["connections_opened"]


def test_restarted_upstream_never_surfaces_a_stale_connection() -> None:
    """After an unload and restart, the next request succeeds on a fresh connection."""
    with start_swapgate(one_model()) as gate:
        for _ in range(5):
            assert gate.chat("alpha")[0] == 200
            assert gate.post("/api/models/unload/alpha")[0] == 200
        assert gate.chat("alpha")[0] == 200


def test_bytes_are_relayed_unchanged() -> None:
    """Path, query, body and end-to-end headers reach the upstream untouched; hop-by-hop ones,
    and those the client's Connection header names (RFC 9110 §7.6.1), do not."""
    import hashlib
    import http.client

    with start_swapgate(one_model()) as gate:
        body = b'{"model": "alpha",   "query": "x", "documents": ["a", "b"]}'
        # http.client sends headers as given (urllib would replace Connection with close)
        conn = http.client.HTTPConnection("127.0.0.1", gate.port, timeout=10)
        try:
            conn.request(
                "POST",
                "/v1/rerank?top_n=1",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Trace": "t1",
                    "X-Keep": "k",
                    "Connection": "keep-alive, X-Trace",
                    "Keep-Alive": "timeout=5",
                },
            )
            resp = conn.getresponse()
            echo = json.loads(resp.read())
            assert resp.status == 200
            assert resp.getheader("x-swapgate-model") == "alpha"
        finally:
            conn.close()
        assert echo["path"] == "/v1/rerank"
        assert echo["query"] == "top_n=1"
        assert echo["body_bytes"] == len(body)
        assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert echo["headers"]["x-keep"] == "k"
        assert "x-trace" not in echo["headers"]
        assert "keep-alive" not in echo["headers"]


def test_use_model_name_rewrites_the_model_sent_upstream() -> None:
    """useModelName replaces the body's model; the rest of the body is kept."""
    config = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha")}
    useModelName: org/alpha-7b
"""
    with start_swapgate(config) as gate:
        status, _, body = gate.chat("alpha", temperature=0.25)
        assert status == 200
        assert body["model"] == "org/alpha-7b"


def test_multipart_upload_routes_by_its_model_field() -> None:
    """An audio transcription upload is routed by its `model` form field and relayed whole."""
    with start_swapgate(one_model()) as gate:
        boundary = "XyZ"
        audio = bytes(range(256)) * 400
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                "Content-Type: audio/wav\r\n\r\n"
            ).encode()
            + audio
            + (
                f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nalpha'
                f"\r\n--{boundary}--\r\n"
            ).encode()
        )
        status, _, echo = gate.post(
            "/v1/audio/transcriptions",
            body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert status == 200, echo
        assert echo["body_bytes"] == len(body)


def test_upstream_passthrough_with_slash_in_model_id() -> None:
    """/upstream/{model}/{path} reaches that model's server; ids may contain '/'."""
    config = f"""
models:
  org/alpha:
    cmd: {fake_cmd("org/alpha")}
"""
    with start_swapgate(config) as gate:
        status, _, echo = gate.get("/upstream/org/alpha/props?x=1")
        assert status == 200
        assert (echo["method"], echo["path"], echo["query"]) == ("GET", "/props", "x=1")
        _, _, echo = gate.get("/upstream/org/alpha/files/a%20b.txt")
        assert echo["path"] == "/files/a%20b.txt"  # forwarded as the client encoded it
        assert gate.get("/upstream/org/nope/props")[0] == 404
