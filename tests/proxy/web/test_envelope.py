"""swapgate.proxy.web.envelope: OpenAI-shaped errors everywhere, Anthropic-shaped on /v1/messages*."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from blacksheep import Response

from swapgate.proxy.errors import (
    BackendStartFailed,
    BadRequest,
    BodyTooLarge,
    ConcurrencyLimited,
    ModelNotFound,
    SwapgateError,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
)
from swapgate.proxy.web.envelope import (
    anthropic_error_type,
    error_event,
    error_response,
    is_anthropic_path,
)


def body_of(response: Response) -> Any:
    """The response's JSON body."""
    assert response.content is not None
    return orjson.loads(response.content.body)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/messages", True),
        ("/v1/messages/count_tokens", True),
        ("/v1/messages/batches/x", True),
        ("/v1/messagesx", False),
        ("/v1/chat/completions", False),
        ("/upstream/a/v1/messages", False),
    ],
)
def test_anthropic_paths(path: str, expected: bool) -> None:
    """Only /v1/messages and what lies under it count as Anthropic's API."""
    assert is_anthropic_path(path) is expected


@pytest.mark.parametrize(
    ("exc", "error_type"),
    [
        (BadRequest("x"), "invalid_request_error"),
        (Unauthorized("x"), "authentication_error"),
        (ModelNotFound("x"), "not_found_error"),
        (BodyTooLarge("x"), "request_too_large"),
        (ConcurrencyLimited("x"), "rate_limit_error"),
        (UpstreamError("x"), "api_error"),
        (UpstreamTimeout("x"), "api_error"),
        (BackendStartFailed("x"), "overloaded_error"),
        (SwapgateError("x"), "api_error"),
    ],
)
def test_anthropic_types_follow_the_status(exc: SwapgateError, error_type: str) -> None:
    """Each swapgate error maps to Anthropic's type name for its status."""
    response = error_response(exc, anthropic=True)
    assert response.status == int(exc.status)
    body = body_of(response)
    assert body == {"type": "error", "error": {"type": error_type, "message": "x"}}


def test_unlisted_statuses_fall_back_by_class() -> None:
    """An unmapped 4xx is invalid_request_error, an unmapped 5xx api_error."""
    assert (anthropic_error_type(418), anthropic_error_type(507)) == (
        "invalid_request_error",
        "api_error",
    )


def test_openai_shape_and_headers_stay_by_default() -> None:
    """Without `anthropic` the OpenAI envelope and Retry-After are unchanged."""
    response = error_response(ConcurrencyLimited("busy"))
    assert body_of(response) == {
        "error": {"message": "busy", "type": "rate_limit_error", "code": "concurrency_limit"}
    }
    assert response.get_first_header(b"retry-after") == b"1"
    assert (
        error_response(ConcurrencyLimited("busy"), anthropic=True).get_first_header(b"retry-after")
        == b"1"
    )


def test_sse_error_events() -> None:
    """Mid-stream errors: a plain `data:` event for OpenAI, `event: error` for Anthropic."""
    exc = UpstreamError("gone")
    openai_event = error_event(exc)
    assert openai_event.startswith(b"data: {")
    assert openai_event.endswith(b"\n\n")
    anthropic_event = error_event(exc, anthropic=True)
    head, data = anthropic_event.removesuffix(b"\n\n").split(b"\n")
    assert head == b"event: error"
    assert orjson.loads(data.removeprefix(b"data: ")) == {
        "type": "error",
        "error": {"type": "api_error", "message": "gone"},
    }
