"""CORS decisions: same-origin detection, the allowed origins and the preflight answer."""

from __future__ import annotations

import pytest
from blacksheep import Request

from swapgate.proxy.web.cors import CorsPolicy, is_same_origin


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        (b"http://127.0.0.1:8080", b"127.0.0.1:8080", True),
        (b"https://gw.example.com", b"gw.example.com", True),
        (b"HTTP://LocalHost:8080", b"localhost:8080", True),
        (b"http://localhost:8080", b"127.0.0.1:8080", False),
        (b"http://127.0.0.1:3000", b"127.0.0.1:8080", False),
        (b"null", b"127.0.0.1:8080", False),
        (b"file://", b"127.0.0.1:8080", False),
        (b"http://127.0.0.1:8080", None, False),
    ],
)
def test_same_origin_is_the_host_the_request_came_to(
    origin: bytes, host: bytes | None, same: bool
) -> None:
    """Origin equals http(s):// plus the Host header; anything else is another origin."""
    assert is_same_origin(origin, host) is same


def test_no_origin_is_allowed_by_default() -> None:
    """The default policy allows no other origin."""
    assert not CorsPolicy([]).allows(b"http://localhost:3000")


def test_listed_origins_are_allowed_and_echoed() -> None:
    """A listed origin is allowed (case-blind) and echoed with Vary: Origin."""
    policy = CorsPolicy(["http://localhost:3000"])
    assert policy.allows(b"http://localhost:3000")
    assert policy.allows(b"HTTP://LOCALHOST:3000")
    assert not policy.allows(b"http://localhost:3001")
    assert policy.response_headers(b"http://localhost:3000") == [
        (b"access-control-allow-origin", b"http://localhost:3000"),
        (b"vary", b"Origin"),
    ]


def test_star_allows_every_origin_with_a_star() -> None:
    """`["*"]` is llama-swap's open CORS: `Access-Control-Allow-Origin: *`."""
    policy = CorsPolicy(["*"])
    assert policy.allows(b"http://anything.example")
    assert policy.response_headers(b"http://anything.example") == [
        (b"access-control-allow-origin", b"*")
    ]


def preflight(policy: CorsPolicy, *headers: tuple[bytes, bytes]) -> dict[bytes, bytes]:
    """The headers of the policy's answer to an OPTIONS request with `headers`."""
    request = Request("OPTIONS", b"/v1/chat/completions", [(b"host", b"127.0.0.1:8080"), *headers])
    response = policy.preflight(request)
    assert response.status == 204
    return dict(response.headers.items())


def test_preflight_of_an_allowed_origin_allows_its_headers() -> None:
    """The allowed origin is echoed; only well-formed requested header names come back."""
    answer = preflight(
        CorsPolicy(["http://localhost:3000"]),
        (b"origin", b"http://localhost:3000"),
        (b"access-control-request-method", b"POST"),
        (b"access-control-request-headers", b"content-type, authorization, bad header"),
    )
    assert answer[b"access-control-allow-origin"] == b"http://localhost:3000"
    assert answer[b"vary"] == b"Origin"
    assert answer[b"access-control-allow-headers"] == b"content-type, authorization"
    assert b"POST" in answer[b"access-control-allow-methods"]


def test_preflight_without_another_origin_has_no_cors_headers() -> None:
    """An OPTIONS without Origin (or from the server's own) gets Allow and no CORS headers."""
    for extra in ((), ((b"origin", b"http://127.0.0.1:8080"),)):
        answer = preflight(CorsPolicy(["*"]), *extra)
        assert b"access-control-allow-origin" not in answer
        assert b"GET" in answer[b"allow"]
