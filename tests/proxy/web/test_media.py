"""Which Content-Type each kind of endpoint takes (pure), and the 415 it raises otherwise."""

from __future__ import annotations

import pytest
from blacksheep import Request

from swapgate.proxy.errors import UnsupportedMediaType
from swapgate.proxy.web.media import BodyKind, accepts, check_media, media_type

JSON, MULTIPART, EITHER, NONE = (
    BodyKind.JSON,
    BodyKind.MULTIPART,
    BodyKind.JSON_OR_MULTIPART,
    BodyKind.NONE,
)


@pytest.mark.parametrize(
    ("kind", "media", "has_body", "ok"),
    [
        (JSON, b"application/json", True, True),
        (JSON, b"application/vnd.api+json", True, True),
        (JSON, b"text/plain", True, False),
        (JSON, b"application/x-www-form-urlencoded", True, False),
        (JSON, b"multipart/form-data", True, False),
        (JSON, b"", True, False),
        (JSON, b"+json", True, False),
        (MULTIPART, b"multipart/form-data", True, True),
        (MULTIPART, b"application/json", True, False),
        (MULTIPART, b"text/plain", True, False),
        (EITHER, b"application/json", True, True),
        (EITHER, b"multipart/form-data", True, True),
        (EITHER, b"text/plain", True, False),
        (NONE, b"", False, True),
        (NONE, b"text/plain", False, True),
        (NONE, b"application/json", True, True),
        (NONE, b"text/plain", True, False),
        (NONE, b"application/x-www-form-urlencoded", True, False),
    ],
)
def test_accepts(kind: BodyKind, media: bytes, has_body: bool, ok: bool) -> None:
    """JSON endpoints take JSON types only, uploads multipart, body-less ones no other body."""
    assert accepts(kind, media, has_body) is ok


def test_media_type_drops_parameters_and_case() -> None:
    """Parameters and case do not matter; an absent header is empty."""
    assert media_type(b"Application/JSON; charset=utf-8") == b"application/json"
    assert media_type(b"multipart/form-data; boundary=x") == b"multipart/form-data"
    assert media_type(None) == b""


def request(method: str, path: str, *headers: tuple[bytes, bytes]) -> Request:
    """A request as BlackSheep builds one from its ASGI scope."""
    req = Request(method, path.encode(), list(headers))
    req.scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    return req


def test_check_media_names_the_endpoint_the_type_and_the_fix() -> None:
    """The 415 says what the endpoint needs and what it got."""
    req = request("POST", "/v1/chat/completions", (b"content-type", b"text/plain;charset=UTF-8"))
    with pytest.raises(UnsupportedMediaType) as caught:
        check_media(JSON, req)
    assert caught.value.status == 415
    assert caught.value.message.startswith(
        "POST /v1/chat/completions needs Content-Type: application/json, got Content-Type "
        "text/plain"
    )


def test_body_less_endpoint_refuses_only_a_declared_non_json_body() -> None:
    """No body, an empty one, or a JSON one pass; a form body is refused."""
    check_media(NONE, request("POST", "/api/models/unload"))
    check_media(NONE, request("POST", "/api/models/unload", (b"content-length", b"0")))
    json_body = ((b"content-length", b"2"), (b"content-type", b"application/json"))
    check_media(NONE, request("POST", "/api/models/unload", *json_body))
    form = ((b"transfer-encoding", b"chunked"), (b"content-type", b"text/plain"))
    with pytest.raises(UnsupportedMediaType):
        check_media(NONE, request("POST", "/api/models/unload", *form))
