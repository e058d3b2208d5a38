"""No web page can drive swapgate: Host and Origin checks, JSON-only bodies, safe GETs, and
HEAD / 405 / prompt stream headers, through a real swapgate and fake upstream."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import LOCALHOST

pytestmark = pytest.mark.integration

CONFIG = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha")}
"""
EVIL = "http://evil.example"
CHAT = json.dumps({"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}).encode()


def request(
    gate: Swapgate,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection(LOCALHOST, gate.port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def code_of(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


def test_a_page_elsewhere_cannot_start_or_stop_models() -> None:
    """A text/plain chat (a "simple" cross-origin request) never starts the model: 415 without
    an Origin, 403 with a foreign one; nor does an <img> of /upstream/...; a cross-origin
    unload is 403 and the model runs on."""
    with start_swapgate(CONFIG) as gate:
        plain = {"Content-Type": "text/plain;charset=UTF-8"}
        status, _, body = request(gate, "POST", "/v1/chat/completions", CHAT, plain)
        assert (status, code_of(body)) == (415, "unsupported_media_type")
        status, _, body = request(
            gate, "POST", "/v1/chat/completions", CHAT, {**plain, "Origin": EVIL}
        )
        assert (status, code_of(body)) == (403, "origin_not_allowed")
        embed = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}  # an <img>
        assert request(gate, "GET", "/upstream/alpha/health", headers=embed)[0] == 403
        assert gate.running() == {}  # none of these started alpha
        assert gate.chat("alpha")[0] == 200
        status, _, body = request(gate, "POST", "/api/models/unload", None, {"Origin": EVIL})
        assert (status, code_of(body)) == (403, "origin_not_allowed")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = request(gate, "POST", "/api/models/unload", b"a=1", form)
        assert (status, code_of(body)) == (415, "unsupported_media_type")
        assert gate.running()["alpha"]["state"] == "ready"
        own = {"Origin": gate.url}
        assert request(gate, "POST", "/api/models/unload", None, own)[0] == 200
        assert gate.running() == {}


def test_rebinding_host_is_421_and_get_unload_is_405() -> None:
    """A page whose name rebinds to 127.0.0.1 gets 421; a bare GET /unload is 405 with
    Allow: POST and unloads nothing."""
    with start_swapgate(CONFIG) as gate:
        status, _, body = request(gate, "GET", "/running", headers={"Host": "evil.example:8080"})
        assert (status, code_of(body)) == (421, "host_not_allowed")
        assert "allowedHosts" in json.loads(body)["error"]["message"]
        assert (
            request(gate, "GET", "/running", headers={"Host": f"localhost:{gate.port}"})[0] == 200
        )
        assert gate.chat("alpha")[0] == 200
        status, headers, body = request(gate, "GET", "/unload")
        assert (status, headers["allow"], code_of(body)) == (405, "POST", "method_not_allowed")
        assert "POST /api/models/unload" in json.loads(body)["error"]["message"]
        assert request(gate, "HEAD", "/unload")[0] == 405
        assert gate.running()["alpha"]["state"] == "ready"


def test_head_and_405() -> None:
    """HEAD /health is 200 with the GET's headers and no body (the next response on the same
    connection parses); a wrong method on a known path is 405 with Allow."""
    with start_swapgate(CONFIG) as gate:
        conn = http.client.HTTPConnection(LOCALHOST, gate.port, timeout=10)
        conn.request("HEAD", "/health")
        head = conn.getresponse()
        assert (head.status, head.read(), head.getheader("content-length")) == (200, b"", "2")
        conn.request("GET", "/health")
        assert conn.getresponse().read() == b"OK"
        conn.close()
        status, headers, body = request(gate, "DELETE", "/running")
        assert (status, headers["allow"], code_of(body)) == (405, "GET, HEAD", "method_not_allowed")
        status, headers, body = request(gate, "GET", "/v1/messages")
        assert (status, headers["allow"]) == (405, "POST")
        assert json.loads(body)["type"] == "error"  # Anthropic's envelope on its path
        assert request(gate, "GET", "/nothing/here")[0] == 404


def first_bytes_within(gate: Swapgate, path: str, method: str = "GET") -> tuple[bytes, float]:
    """What a raw connection receives first for `path`, and after how many seconds."""
    with socket.create_connection((LOCALHOST, gate.port), timeout=5) as sock:
        sock.settimeout(1.0)
        started = time.monotonic()
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {LOCALHOST}\r\n\r\n".encode())
        data = sock.recv(65536)
        return data, time.monotonic() - started


def test_stream_headers_arrive_at_once_and_head_opens_no_stream() -> None:
    """/logs/stream?no-history on a quiet gateway sends its headers within 1 s; HEAD on the
    streams answers headers and ends (no stream is held open)."""
    with start_swapgate(CONFIG) as gate:
        data, elapsed = first_bytes_within(gate, "/logs/stream?no-history")
        assert data.startswith(b"HTTP/1.1 200")
        assert b"content-type: text/plain" in data.lower()
        assert elapsed < 1.0
        for path in ("/logs/stream", "/api/events"):
            status, headers, body = request(gate, "HEAD", path)
            assert (status, body) == (200, b"")
            assert headers["cache-control"] == "no-cache"
        assert request(gate, "HEAD", "/api/events")[1]["content-type"] == "text/event-stream"


NAMED = f"""
allowedHosts: [gateway.test]
cors:
  allowOrigins: ["http://app.test:3000"]
apiKeys: [sk-browser-guard-key]
models:
  alpha:
    cmd: {fake_cmd("alpha")}
"""
KEY = {"Authorization": "Bearer sk-browser-guard-key"}


def test_allowed_hosts_and_origins_pass_with_cors_headers() -> None:
    """A name in allowedHosts is served; a listed origin gets its preflight and its actual
    request answered with the echoed origin, unlisted ones still 403, keys or not."""
    with start_swapgate(NAMED) as gate:
        host = {"Host": f"gateway.test:{gate.port}", **KEY}
        assert request(gate, "GET", "/running", headers=host)[0] == 200
        assert request(gate, "GET", "/running", headers={**KEY, "Host": "other.test"})[0] == 421
        ask = {
            "Origin": "http://app.test:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        status, headers, _ = request(gate, "OPTIONS", "/v1/chat/completions", headers=ask)
        assert status == 204
        assert headers["access-control-allow-origin"] == "http://app.test:3000"
        assert headers["vary"] == "Origin"
        assert headers["access-control-allow-headers"] == "authorization, content-type"
        actual = {"Origin": "http://app.test:3000", "Content-Type": "application/json", **KEY}
        status, headers, _ = request(gate, "POST", "/v1/chat/completions", CHAT, actual)
        assert status == 200
        assert headers["access-control-allow-origin"] == "http://app.test:3000"
        assert headers["vary"] == "Origin"
        status, headers, _ = request(
            gate, "OPTIONS", "/v1/chat/completions", headers={**ask, "Origin": EVIL}
        )
        assert status == 403
        assert "access-control-allow-origin" not in headers
        assert request(gate, "GET", "/running", headers={**KEY, "Origin": EVIL})[0] == 403


def test_keyed_get_unload_still_unloads_but_not_from_another_site() -> None:
    """With apiKeys, GET /unload with a key unloads (llama-swap); the same GET made by a page
    of another site with the browser's stored Basic auth is refused: 403 for an <img>, 405
    for a followed link."""
    with start_swapgate(NAMED) as gate:
        assert gate.chat("alpha", headers=KEY)[0] == 200
        basic = "Basic " + base64.b64encode(b"user:sk-browser-guard-key").decode()
        image = {
            "Authorization": basic,
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "no-cors",
        }
        assert request(gate, "GET", "/unload", headers=image)[0] == 403  # the guard
        link = {**image, "Sec-Fetch-Mode": "navigate"}
        assert request(gate, "GET", "/unload", headers=link)[0] == 405  # the handler
        status, _, body = gate.get("/running", headers=KEY)
        assert [r["model"] for r in body["running"]] == ["alpha"]
        status, _, text = request(gate, "GET", "/unload", headers=KEY)
        assert (status, text) == (200, b"OK")
        assert gate.get("/running", headers=KEY)[2] == {"running": []}
