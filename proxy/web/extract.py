"""Request -> what routing needs: the body (read once, size-, time- and budget-limited) and
the model name.

JSON bodies are parsed once with orjson; multipart bodies are scanned for the `model` field
without decoding the uploads. Nothing here re-serialises unless the model name must change.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import orjson
from blacksheep import Request

from swapgate.proxy.config.model import Connections
from swapgate.proxy.errors import BadRequest, BodyTooLarge, Unavailable
from swapgate.proxy.web.bodybudget import BodyHold
from swapgate.proxy.web.bodyscope import hold_of
from swapgate.proxy.web.disconnect import Receive

_MULTIPART_BOUNDARY = re.compile(rb'boundary="?([^";]+)"?', re.IGNORECASE)
# The `model` part's headers, up to the blank line that starts its value. `[^\r\n]+` stops at
# that blank line; `\b` keeps `filename="model"` from matching.
_MODEL_PART = re.compile(rb'\bname="model"\r\n(?:[^\r\n]+\r\n)*\r\n', re.IGNORECASE)
# Bodies held by other requests are gone within a request's time; one second is a fair retry.
BUDGET_RETRY_AFTER_S = 1.0


@dataclass(slots=True)
class InferenceBody:
    """A request body and the model it names; `parsed` is the JSON object when JSON."""

    raw: bytes
    model: str
    parsed: dict[str, object] | None


class RequestTimeout(BadRequest):
    """The client stopped sending its body (bodyIdleTimeout) or took too long (bodyTimeout)."""

    status = HTTPStatus.REQUEST_TIMEOUT
    code = "request_timeout"


class BodyBudgetFull(Unavailable):
    """Taking this body would hold more than maxBufferedRequestBytes at once."""

    code = "request_buffer_full"
    retry_after_s = BUDGET_RETRY_AFTER_S


async def read_body(request: Request, limit: int, timeouts: Connections) -> bytes:
    """The whole body, refusing anything over `limit` bytes without buffering past it.

    Reads the ASGI messages directly: a body that arrives in one message (almost all) is
    returned as is, without the copy a general reader makes. Every chunk is counted against
    the request's hold on the body budget (all of a declared Content-Length up front), and
    every wait for a chunk is bounded by the body timeouts: a client that stalls gets 408,
    after which the server closes the connection (the rest of the body is never read). A
    body over the budget is read to its end and dropped, then refused with 503.
    """
    declared = request.get_first_header(b"content-length")
    size_hint = int(declared) if declared is not None and declared.isdigit() else 0
    if size_hint > limit:
        raise too_large(size_hint, limit)
    receive: Receive | None = getattr(request.content, "receive", None)
    if receive is None:  # not an ASGI request (never the case under Granian)
        return await request.read() or b""
    clock = BodyClock(timeouts)
    hold = hold_of(request.scope)
    try:
        if hold is not None and size_hint:
            reserve(hold, size_hint)
        return await _collect(receive, clock, limit, hold)
    except BodyBudgetFull:
        # Read the rest and drop it, within the same deadlines: a client still sending then
        # gets the 503 and its Retry-After instead of a reset connection.
        await discard_rest(receive, clock)
        raise


async def _collect(receive: Receive, clock: BodyClock, limit: int, hold: BodyHold | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await clock.within(receive)
        if message.get("type") == "http.disconnect":
            raise client_gone()
        chunk = cast("bytes", message.get("body", b""))
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(size, limit)
            if hold is not None:
                reserve(hold, size)
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def discard_rest(receive: Receive, clock: BodyClock) -> None:
    while True:
        message = await clock.within(receive)
        if message.get("type") == "http.disconnect":
            raise client_gone()
        if not message.get("more_body"):
            return


def client_gone() -> BadRequest:
    msg = "client disconnected while sending the request body"
    return BadRequest(msg, code="client_disconnected")


class BodyClock:
    """The deadlines of one body: `body_idle_timeout_s` per chunk, `body_timeout_s` in all."""

    __slots__ = ("_end", "_idle_s", "_total_s")

    def __init__(self, timeouts: Connections) -> None:
        self._idle_s = timeouts.body_idle_timeout_s
        self._total_s = timeouts.body_timeout_s
        now = asyncio.get_running_loop().time()
        self._end = now + self._total_s if self._total_s else None

    async def within(self, receive: Receive) -> MutableMapping[str, object]:
        """The next ASGI message, or RequestTimeout once a deadline passes."""
        now = asyncio.get_running_loop().time()
        idle_end = now + self._idle_s if self._idle_s else None
        ends = [end for end in (idle_end, self._end) if end is not None]
        if not ends:
            return await receive()
        when = min(ends)
        try:
            async with asyncio.timeout_at(when):
                return await receive()
        except TimeoutError:
            raise self._timed_out(idle=when == idle_end) from None

    def _timed_out(self, *, idle: bool) -> RequestTimeout:
        if idle:
            return RequestTimeout(
                f"no request body bytes arrived for {self._idle_s:g}s — send the body without "
                "pausing, or raise connections.bodyIdleTimeout in the config"
            )
        return RequestTimeout(
            f"the request body did not arrive within {self._total_s:g}s — send it faster, "
            "or raise connections.bodyTimeout in the config"
        )


def reserve(hold: BodyHold, total: int) -> None:
    if hold.reserve_up_to(total):
        return
    budget = hold.budget
    msg = (
        f"swapgate is holding {budget.held} bytes of request bodies and this one needs "
        f"{total - hold.size} more, over maxBufferedRequestBytes ({budget.limit} bytes) — "
        "retry after the Retry-After delay, or raise maxBufferedRequestBytes in the config"
    )
    raise BodyBudgetFull(msg)


def too_large(size: int, limit: int) -> BodyTooLarge:
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
