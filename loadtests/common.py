"""The streaming chat request shared by the locust files, with its TTFT event.

Settings come from :mod:`loadtests.settings` (environment variables).
"""

from __future__ import annotations

import time

from locust import events
from locust.contrib.fasthttp import FastHttpSession

from swapgate.loadtests.settings import CHAT_PATH, arm_of, chat_body


def stream_chat(
    client: FastHttpSession, model_name: str, name: str, *, per_arm: bool = False
) -> None:
    """One streaming chat completion; reports its TTFT as a separate ``TTFT`` request type.

    Locust's own time for a streamed request stops at the response headers, so the whole
    stream is read here and the time to the first content chunk fired as its own event.
    With ``per_arm`` both rows are named after the arm swapgate chose (``chat stream
    chat-ab/variant-a``, from the ``x-swapgate-route`` response header).
    """
    start = time.perf_counter()
    headers = {"Content-Type": "application/json"}
    body = chat_body(model_name, stream=True)
    with client.post(
        CHAT_PATH, data=body, headers=headers, stream=True, name=name, catch_response=True
    ) as resp:
        if per_arm:
            name = f"{name} {arm_of(resp.headers or {})}"
            resp.request_meta["name"] = name  # the row this request is counted in
        if resp.status_code != 200:  # HTTP OK
            resp.failure(f"HTTP {resp.status_code}")
            return
        ttft, chunks = _read_sse(resp)
        if ttft is None:
            resp.failure("stream ended without a content chunk")
            return
        resp.success()
    events.request.fire(  # type: ignore[no-untyped-call]  # locust's EventHook is untyped
        request_type="TTFT",
        name=name,
        response_time=(ttft - start) * 1000,
        response_length=chunks,
        exception=None,
        context={},
    )


def _read_sse(resp: object) -> tuple[float | None, int]:
    """(time of the first content chunk, content chunks) of an SSE body."""
    # geventhttpclient's public readline() splits on CRLF; SSE lines end in LF only.
    raw = resp._response  # type: ignore[attr-defined]
    first: float | None = None
    chunks = 0
    while True:
        line: bytes = raw.readline(b"\n")
        if not line or line.startswith(b"data: [DONE]"):
            return first, chunks
        if line.startswith(b"data: ") and b'"content":' in line and b'"content":""' not in line:
            chunks += 1
            if first is None:
                first = time.perf_counter()
