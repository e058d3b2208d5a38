"""SwapgateError -> the client-facing error, in the shape the client's API expects.

OpenAI shape everywhere: `{"error": {"message", "type", "code"}}`. On Anthropic's endpoints
(`/v1/messages`, `/v1/messages/...`) Anthropic's: `{"type": "error", "error": {"type",
"message"}}`, with its error type names, so the Anthropic SDKs raise their usual classes.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson
from blacksheep import Content, Response

from swapgate.proxy.errors import SwapgateError, Unauthorized

_JSON = b"application/json"
ANTHROPIC_PATH = "/v1/messages"

# Anthropic's error type per status (docs.claude.com/en/api/errors); other 4xx are
# invalid_request_error and other 5xx api_error, as Anthropic does. swapgate's 503 (the model
# cannot serve right now, retry later) is what Anthropic calls overloaded (its 529).
ANTHROPIC_TYPES: dict[int, str] = {
    HTTPStatus.BAD_REQUEST: "invalid_request_error",
    HTTPStatus.UNAUTHORIZED: "authentication_error",
    HTTPStatus.FORBIDDEN: "permission_error",
    HTTPStatus.NOT_FOUND: "not_found_error",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "request_too_large",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limit_error",
    HTTPStatus.INTERNAL_SERVER_ERROR: "api_error",
    HTTPStatus.BAD_GATEWAY: "api_error",
    HTTPStatus.SERVICE_UNAVAILABLE: "overloaded_error",
    HTTPStatus.GATEWAY_TIMEOUT: "api_error",
}


def is_anthropic_path(path: str) -> bool:
    """True for Anthropic's endpoints: `/v1/messages` and everything under it."""
    return path.startswith(ANTHROPIC_PATH) and (
        len(path) == len(ANTHROPIC_PATH) or path[len(ANTHROPIC_PATH)] == "/"
    )


def anthropic_error_type(status: int) -> str:
    known = ANTHROPIC_TYPES.get(status)
    if known is not None:
        return known
    return "api_error" if status >= HTTPStatus.INTERNAL_SERVER_ERROR else "invalid_request_error"


def error_body(message: str, error_type: str, code: str) -> bytes:
    """An OpenAI error envelope."""
    return orjson.dumps({"error": {"message": message, "type": error_type, "code": code}})


def anthropic_error_body(exc: SwapgateError) -> bytes:
    """An Anthropic error envelope for `exc`."""
    error = {"type": anthropic_error_type(int(exc.status)), "message": exc.message}
    return orjson.dumps({"type": "error", "error": error})


def error_payload(exc: SwapgateError, *, anthropic: bool = False) -> bytes:
    """The JSON error body for `exc`: Anthropic's shape if `anthropic`, else OpenAI's."""
    if anthropic:
        return anthropic_error_body(exc)
    return error_body(exc.message, exc.error_type, exc.code)


def error_event(exc: SwapgateError, *, anthropic: bool = False) -> bytes:
    """`exc` as one SSE event in the middle of a stream: a `data:` event carrying the OpenAI
    envelope, or for Anthropic streams `event: error` with Anthropic's envelope (what its SDKs
    raise from)."""
    if anthropic:
        return b"event: error\ndata: " + anthropic_error_body(exc) + b"\n\n"
    return b"data: " + error_payload(exc) + b"\n\n"


def error_response(exc: SwapgateError, *, anthropic: bool = False) -> Response:
    """The client-facing response for `exc`, with Retry-After where a retry makes sense."""
    headers: list[tuple[bytes, bytes]] = []
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, float | int):
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    if isinstance(exc, Unauthorized):
        headers.append((b"www-authenticate", b'Bearer realm="swapgate"'))
    body = error_payload(exc, anthropic=anthropic)
    return Response(int(exc.status), headers, Content(_JSON, body))


def json_response(payload: object, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return Response(int(status), None, Content(_JSON, orjson.dumps(payload)))


def text_response(text: str, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return Response(int(status), None, Content(b"text/plain; charset=utf-8", text.encode()))
