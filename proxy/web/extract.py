"""Request -> what routing needs: the body (read once, size-limited) and the model name.

JSON bodies are parsed once with orjson; multipart bodies are scanned for the `model` field
without decoding the uploads. Nothing here re-serialises unless the model name must change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import orjson
from blacksheep import Request

from swapgate.proxy.errors import BadRequest, BodyTooLarge
from swapgate.proxy.web.disconnect import Receive

_MULTIPART_BOUNDARY = re.compile(rb'boundary="?([^";]+)"?', re.IGNORECASE)
# The `model` part's headers, up to the blank line that starts its value. `[^\r\n]+` stops at
# that blank line; `\b` keeps `filename="model"` from matching.
_MODEL_PART = re.compile(rb'\bname="model"\r\n(?:[^\r\n]+\r\n)*\r\n', re.IGNORECASE)


@dataclass(slots=True)
class InferenceBody:
    """A request body and the model it names; `parsed` is the JSON object when JSON."""

    raw: bytes
    model: str
    parsed: dict[str, object] | None


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing anything over `limit` bytes without buffering past it.

    Reads the ASGI messages directly: a body that arrives in one message (almost all) is
    returned as is, without the copy a general reader makes.
    """
    declared = request.get_first_header(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    receive: Receive | None = getattr(request.content, "receive", None)
    if receive is None:  # not an ASGI request (never the case under Granian)
        return await request.read() or b""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            msg = "client disconnected while sending the request body"
            raise BadRequest(msg, code="client_disconnected")
        chunk = cast("bytes", message.get("body", b""))
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"request body is {size} bytes, over the limit of {limit} bytes — "
        "raise maxRequestBytes in the config if this is expected"
    )


def parse_inference_body(raw: bytes, content_type: bytes) -> InferenceBody:
    """Find the model name: a JSON `model` field, or a multipart form field named `model`."""
    if content_type.lower().startswith(b"multipart/form-data"):
        return InferenceBody(raw, _multipart_model(raw, content_type), None)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = f"request body is not valid JSON: {exc}"
        raise BadRequest(msg) from exc
    if not isinstance(parsed, dict):
        msg = "request body must be a JSON object with a 'model' field"
        raise BadRequest(msg)
    model = parsed.get("model")
    if not isinstance(model, str) or not model:
        msg = "missing or invalid 'model' field: send the id of a configured model (GET /v1/models lists them)"
        raise BadRequest(msg, code="missing_model")
    return InferenceBody(raw, model, parsed)


def _multipart_model(raw: bytes, content_type: bytes) -> str:
    boundary = _MULTIPART_BOUNDARY.search(content_type)
    header = _MODEL_PART.search(raw)
    if boundary is None or header is None:
        msg = "missing 'model' field in multipart form data"
        raise BadRequest(msg, code="missing_model")
    end = raw.find(b"\r\n--" + boundary.group(1), header.end())
    value = raw[header.end() : end if end >= 0 else None].strip()
    if not value:
        msg = "empty 'model' field in multipart form data"
        raise BadRequest(msg, code="missing_model")
    return value.decode("utf-8", "replace")


def with_model(body: InferenceBody, content_type: bytes, model: str) -> bytes:
    """The body with its model name replaced (re-serialised only because it changed)."""
    if body.parsed is not None:
        return orjson.dumps({**body.parsed, "model": model})
    header = _MODEL_PART.search(body.raw)
    boundary = _MULTIPART_BOUNDARY.search(content_type)
    if header is None or boundary is None:
        return body.raw
    end = body.raw.find(b"\r\n--" + boundary.group(1), header.end())
    rest = body.raw[end:] if end >= 0 else b""
    return body.raw[: header.end()] + model.encode() + rest
