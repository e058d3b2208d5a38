"""Streaming endpoints send their status line and headers at once, before any data.

Granian holds `http.response.start` until the first body bytes; a stream with nothing to say
yet (`/logs/stream?no-history` on a quiet gateway) would send nothing at all, and clients'
header timeouts fire. An empty body message with `more_body` makes Granian write the headers
(BlackSheep cannot send one: it ends a response on an empty chunk), so this middleware sends
one right after the start of a streamed GET response under the given path prefixes. Other requests pass through
untouched: one `startswith` per request. Imports only the standard library.
"""

from __future__ import annotations

from swapgate.proxy.web.access import ASGIApp, Message, Receive, Scope, Send

_START = "http.response.start"
_EMPTY_CHUNK = {"type": "http.response.body", "body": b"", "more_body": True}


class FlushHeaders:
    """ASGI middleware: GET responses under `prefixes` get their headers sent at once."""

    __slots__ = ("app", "prefixes")

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return

        async def flushing(message: Message) -> None:
            await send(message)
            if message["type"] == _START and _streamed(message):
                await send(dict(_EMPTY_CHUNK))

        await self.app(scope, receive, flushing)


def _streamed(start: Message) -> bool:
    """A response without Content-Length (a stream); an error answer goes out as it is."""
    return all(name != b"content-length" for name, _ in start.get("headers", ()))
