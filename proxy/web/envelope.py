"""SwapgateError -> OpenAI-shaped JSON response: {"error": {"message", "type", "code"}}."""

from __future__ import annotations

from http import HTTPStatus

import orjson
from blacksheep import Content, Response

from proxy.errors import SwapgateError, Unauthorized

_JSON = b"application/json"


def error_body(message: str, error_type: str, code: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": error_type, "code": code}})


def error_response(exc: SwapgateError) -> Response:
    """The client-facing response for `exc`, with Retry-After where a retry makes sense."""
    headers: list[tuple[bytes, bytes]] = []
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, float | int):
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    if isinstance(exc, Unauthorized):
        headers.append((b"www-authenticate", b'Bearer realm="swapgate"'))
    body = error_body(exc.message, exc.error_type, exc.code)
    return Response(int(exc.status), headers, Content(_JSON, body))


def json_response(payload: object, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return Response(int(status), None, Content(_JSON, orjson.dumps(payload)))


def text_response(text: str, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return Response(int(status), None, Content(b"text/plain; charset=utf-8", text.encode()))
