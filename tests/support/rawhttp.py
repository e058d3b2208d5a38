"""HTTP/1.1 over raw asyncio sockets, for clients that misbehave on purpose: bodies that
stall, heads sent a line at a time, connections left idle."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from dataclasses import dataclass

from tests.support.procs import LOCALHOST

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Reply:
    """A response read up to the server's close: status, lower-cased headers, body, timing."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_s: float

    def json(self) -> dict[str, object]:
        parsed = json.loads(self.body)
        assert isinstance(parsed, dict)
        return parsed


def raise_open_files() -> int:
    """Raise this process's soft open-file limit to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def head(port: int, method: str, path: str, *fields: str, length: int | None = None) -> bytes:
    """A request head for swapgate on `port` (Host and JSON Content-Type set)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOCALHOST}:{port}"]
    lines += ["Content-Type: application/json", *fields]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chat_body(model: str = "a", padding: int = 0) -> bytes:
    """A one-message chat request body, optionally padded to about `padding` more bytes."""
    content = "hi" + " " * padding
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]}).encode()


def chat_request(port: int, model: str = "a", padding: int = 0) -> bytes:
    """A whole chat request on a connection the server closes after answering."""
    body = chat_body(model, padding)
    return head(port, "POST", "/v1/chat/completions", "Connection: close", length=len(body)) + body


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        return await asyncio.open_connection(LOCALHOST, port)


async def read_reply(reader: asyncio.StreamReader, started: float) -> Reply:
    """Everything up to EOF, parsed as one response (the request asked to close)."""
    raw = await reader.read()
    head_text, _, body = raw.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status, headers, body, time.monotonic() - started)


async def exchange(port: int, data: bytes, timeout: float = 30.0) -> Reply:  # noqa: ASYNC109
    """Send `data` and read the reply up to the server's close, within `timeout` seconds."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        reader, writer = await connect(port)
        try:
            writer.write(data)
            await writer.drain()
            return await read_reply(reader, started)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sends until it closes the connection (a reset counts as a close)."""
    try:
        return await reader.read()
    except OSError:
        return b""
