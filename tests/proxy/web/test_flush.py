"""FlushHeaders: a streamed GET under the prefixes gets an empty chunk right after its start,
so Granian writes the headers at once; everything else passes as it is."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from swapgate.proxy.web.flush import FlushHeaders

STREAMED = [(b"content-type", b"text/plain"), (b"transfer-encoding", b"chunked")]
SIZED = [(b"content-type", b"application/json"), (b"content-length", b"2")]


def sent_by(path: str, headers: list[tuple[bytes, bytes]], method: str = "GET") -> list[Any]:
    """The messages the server gets from an app that starts a response with `headers`."""
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    asyncio.run(FlushHeaders(app, ("/logs/stream", "/api/events"))(scope, receive, send))
    return [message["type"] for message in sent] + [m.get("more_body") for m in sent[1:]]


def test_a_streamed_get_under_a_prefix_is_flushed() -> None:
    """Start, then an empty body message with more_body, for both prefixes."""
    for path in ("/logs/stream", "/logs/stream/alpha", "/api/events"):
        assert sent_by(path, STREAMED) == ["http.response.start", "http.response.body", True]


def test_sized_answers_other_paths_and_methods_are_untouched() -> None:
    """An error with Content-Length, another path, or HEAD gets no extra message."""
    assert sent_by("/logs/stream/nope", SIZED) == ["http.response.start"]
    assert sent_by("/v1/chat/completions", STREAMED) == ["http.response.start"]
    assert sent_by("/logs/stream", STREAMED, "HEAD") == ["http.response.start"]
