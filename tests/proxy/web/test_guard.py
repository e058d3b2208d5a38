"""The browser guard: which Host values name this server, and what the middleware lets through
(a real ASGI app behind it, called as Granian would)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from swapgate.proxy.web.cors import CorsPolicy
from swapgate.proxy.web.guard import BrowserGuard, HostPolicy, host_name

LOOPBACK = HostPolicy(["127.0.0.1:8080", "127.0.0.1"], [], 8080)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (b"127.0.0.1:8080", b"127.0.0.1"),
        (b"LocalHost", b"localhost"),
        (b"[::1]:8080", b"[::1]"),
        (b"[::1]", b"[::1]"),
        (b"example.com.:80", b"example.com"),
        (b"example.com:", b"example.com:"),
    ],
)
def test_host_name_strips_the_port_and_lower_cases(value: bytes, name: bytes) -> None:
    """The name part of a Host value, as the policy compares it."""
    assert host_name(value) == name


@pytest.mark.parametrize(
    "host",
    [
        b"127.0.0.1:8080",
        b"127.0.0.1",
        b"127.1.2.3:9999",
        b"localhost:8080",
        b"LOCALHOST",
        b"app.localhost:3000",
        b"[::1]:8080",
        b"[0:0:0:0:0:0:0:1]",
        b"localhost.:8080",
    ],
)
def test_loopback_names_and_addresses_pass(host: bytes) -> None:
    """Loopback names and addresses, with or without a port, name this server."""
    assert LOOPBACK.allows(host)


@pytest.mark.parametrize(
    "host",
    [
        b"evil.example:8080",
        b"evil.example",
        b"localhost.evil.example",
        b"127.0.0.1.nip.io",
        b"10.0.0.5:8080",
        b"[fe80::1]:8080",
        b"",
        b"evillocalhost",
    ],
)
def test_other_names_and_addresses_are_refused(host: bytes) -> None:
    """A rebinding page's own name, or an address that is not this server's, is refused."""
    assert not LOOPBACK.allows(host)


def test_the_listen_name_and_bound_address_pass() -> None:
    """Listening on a LAN name: that name and the address it resolved to pass."""
    policy = HostPolicy(["gw.lan:8080", "192.168.1.5"], [], 8080)
    assert policy.allows(b"gw.lan:8080")
    assert policy.allows(b"GW.LAN")
    assert policy.allows(b"192.168.1.5:8080")
    assert not policy.allows(b"192.168.1.6:8080")
    ipv6 = HostPolicy(["[fe80::1]:8080", "fe80::1"], [], 8080)
    assert ipv6.allows(b"[fe80::1]:8080")


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080"])
def test_a_wildcard_listen_accepts_ip_literals_but_no_dns_names(listen: str) -> None:
    """On 0.0.0.0 or :: every address may be this machine's; a DNS name still is not."""
    policy = HostPolicy([listen, listen.rpartition(":")[0].strip("[]")], [], 8080)
    assert policy.allows(b"10.1.2.3:8080")
    assert policy.allows(b"[fe80::1]:8080")
    assert not policy.allows(b"evil.example:8080")


def test_allowed_hosts_exact_suffix_and_star() -> None:
    """Exact names, `.domain` (itself and below) and `*` from allowedHosts."""
    policy = HostPolicy(["127.0.0.1:8080"], ["gw.example.net", ".corp.example"], 8080)
    assert policy.allows(b"gw.example.net:8080")
    assert policy.allows(b"corp.example")
    assert policy.allows(b"a.b.corp.example:443")
    assert not policy.allows(b"evilcorp.example")
    assert not policy.allows(b"example.net")
    assert HostPolicy(["127.0.0.1:8080"], ["*"], 8080).allows(b"anything.example")


# ---- the middleware ----------------------------------------------------------------------


class Inner:
    """An ASGI app that answers 200 and records the scopes it saw."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})


def call(
    guard: BrowserGuard,
    headers: list[tuple[bytes, bytes]],
    method: str = "GET",
    path: str = "/running",
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through `guard`: (status, headers, body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(guard(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def make_guard(origins: list[str] | None = None) -> tuple[BrowserGuard, Inner]:
    inner = Inner()
    return BrowserGuard(inner, LOOPBACK, CorsPolicy(origins or [])), inner


def test_plain_local_requests_pass_untouched() -> None:
    """A loopback Host without Origin reaches the app with nothing added."""
    guard, inner = make_guard()
    assert call(guard, [(b"host", b"127.0.0.1:8080")]) == (200, {}, b"ok")
    assert len(inner.seen) == 1


def test_no_host_header_passes() -> None:
    """HTTP/1.0 without Host: no DNS rebinding is possible, so it is served."""
    guard, _ = make_guard()
    assert call(guard, [])[0] == 200
    assert call(guard, [(b"host", b"")])[0] == 200  # what Granian passes for HTTP/1.0


def test_a_foreign_host_gets_421_naming_allowed_hosts() -> None:
    """A rebinding Host is answered 421 in the OpenAI envelope; the app never sees it."""
    guard, inner = make_guard()
    status, headers, body = call(guard, [(b"host", b"evil.example:8080")])
    assert status == 421
    assert headers[b"content-type"] == b"application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "host_not_allowed"
    assert "'evil.example:8080'" in error["message"]
    assert 'add "evil.example" to allowedHosts' in error["message"]
    assert inner.seen == []


def test_anthropic_paths_get_anthropic_shaped_refusals() -> None:
    """On /v1/messages the refusal has Anthropic's envelope."""
    guard, _ = make_guard()
    status, _, body = call(guard, [(b"host", b"evil.example")], "POST", "/v1/messages")
    assert status == 421
    assert json.loads(body)["type"] == "error"


def test_same_origin_passes_and_other_origins_get_403() -> None:
    """The server's own origin passes; a page elsewhere is refused before the app."""
    guard, inner = make_guard()
    own = [(b"host", b"127.0.0.1:8080"), (b"origin", b"http://127.0.0.1:8080")]
    assert call(guard, own, "POST", "/api/models/unload")[0] == 200
    other = [(b"host", b"127.0.0.1:8080"), (b"origin", b"http://evil.example")]
    status, _, body = call(guard, other, "POST", "/api/models/unload")
    assert status == 403
    assert json.loads(body)["error"]["code"] == "origin_not_allowed"
    assert "cors.allowOrigins" in json.loads(body)["error"]["message"]
    assert len(inner.seen) == 1
    preflight = call(guard, [*other, (b"access-control-request-method", b"POST")], "OPTIONS")
    assert preflight[0] == 403
    assert b"access-control-allow-origin" not in preflight[1]


def test_an_allowed_origin_passes_with_cors_headers() -> None:
    """A listed origin reaches the app; its response carries the echoed origin and Vary."""
    guard, _ = make_guard(["http://localhost:3000"])
    headers = [(b"host", b"127.0.0.1:8080"), (b"origin", b"http://localhost:3000")]
    status, sent, _ = call(guard, headers, "POST", "/v1/chat/completions")
    assert status == 200
    assert sent[b"access-control-allow-origin"] == b"http://localhost:3000"
    assert sent[b"vary"] == b"Origin"


def test_pages_of_other_sites_cannot_embed_swapgate_urls() -> None:
    """No Origin but Sec-Fetch-Site cross-site or same-site (an <img>, a <script>): 403; a
    navigation, this server's own pages and typed URLs pass; `["*"]` lets everything in."""
    guard, inner = make_guard()
    host = (b"host", b"127.0.0.1:8080")
    for site in (b"cross-site", b"same-site"):
        status, _, body = call(guard, [host, (b"sec-fetch-site", site)], path="/upstream/a/x")
        assert (status, json.loads(body)["error"]["code"]) == (403, "origin_not_allowed")
    assert inner.seen == []
    navigate = [host, (b"sec-fetch-site", b"cross-site"), (b"sec-fetch-mode", b"navigate")]
    assert call(guard, navigate)[0] == 200
    for site in (b"same-origin", b"none"):
        assert call(guard, [host, (b"sec-fetch-site", site)])[0] == 200
    open_guard, _ = make_guard(["*"])
    assert call(open_guard, [host, (b"sec-fetch-site", b"cross-site")])[0] == 200
