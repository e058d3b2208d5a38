"""`/upstream/...` request bodies pass to the model server as they arrive: a large upload is
never held whole, arrives intact, keeps its framing, and still gets 413 and 408."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import LOCALHOST, wait_until
from tests.support.rawhttp import Reply, connect, head, read_reply
from tests.support.specs import run

pytestmark = pytest.mark.integration

MIB = 1 << 20
CHUNK = 256 * 1024
CONFIG = f"""
maxRequestBytes: {200 * MIB}
connections:
  bodyIdleTimeout: 1
models:
  a:
    cmd: {fake_cmd("a")}
"""


@pytest.fixture(scope="module")
def gate() -> Iterator[Swapgate]:
    with start_swapgate(CONFIG) as running:
        status, _, _ = running.post("/api/models/load/a", timeout=30)
        assert status == 200
        yield running


def peak_rss_mib(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    msg = "no VmHWM line"
    raise AssertionError(msg)


def pattern(size: int) -> Iterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    sent = 0
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        sent += len(piece)
        yield piece


def digest(size: int) -> str:
    sha = hashlib.sha256()
    for piece in pattern(size):
        sha.update(piece)
    return sha.hexdigest()


async def upload(
    port: int,
    size: int,
    *,
    chunked: bool,
    stall_after: int | None = None,
    leave_after: int | None = None,
) -> Reply:
    """POST `size` bytes to the fake's echo through /upstream, with Content-Length or
    chunked; optionally stop sending (stall) or hang up after some bytes."""
    fields = ["Transfer-Encoding: chunked"] if chunked else []
    data = head(port, "POST", "/upstream/a/upload", "Connection: close", *fields,
                length=None if chunked else size)  # fmt: skip
    reader, writer = await connect(port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        writer.write(data)
        sent = 0
        async for piece in _pieces(size):
            if stall_after is not None and sent >= stall_after:
                return await asyncio.wait_for(read_reply(reader, started), 15)
            if leave_after is not None and sent >= leave_after:
                return Reply(0, {}, b"", 0.0)
            try:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                await writer.drain()
            except OSError:  # the server answered early (413) and closed: read its answer
                break
            sent += len(piece)
        else:
            if chunked:
                writer.write(b"0\r\n\r\n")
        return await asyncio.wait_for(read_reply(reader, started), 60)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _pieces(size: int) -> AsyncIterator[bytes]:
    for piece in pattern(size):
        yield piece


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "sized"])
def test_a_large_upload_streams_through_intact(gate: Swapgate, chunked: bool) -> None:
    """96 MiB arrive byte for byte while swapgate's peak memory grows far less than that; a
    sized body keeps its Content-Length, a chunked one stays chunked."""
    size = 96 * MIB
    before = peak_rss_mib(gate.proc.pid)
    reply = run(upload(gate.port, size, chunked=chunked))
    grown = peak_rss_mib(gate.proc.pid) - before
    assert reply.status == 200, reply.body[:300]
    echo = json.loads(reply.body)
    assert (echo["body_bytes"], echo["body_sha256"]) == (size, digest(size))
    if chunked:
        assert echo["headers"].get("transfer-encoding") == "chunked"
    else:
        assert echo["headers"].get("content-length") == str(size)
    assert grown < 32, f"peak RSS grew {grown:.0f} MiB for a {size // MIB} MiB body"


def test_a_small_body_is_sent_whole(gate: Swapgate) -> None:
    reply = run(upload(gate.port, 1000, chunked=True))
    echo = json.loads(reply.body)
    assert (reply.status, echo["body_bytes"], echo["body_sha256"]) == (200, 1000, digest(1000))
    assert echo["headers"].get("content-length") == "1000"  # read whole: sent with its size


def test_a_streamed_body_over_the_limit_is_413() -> None:
    config = CONFIG.replace(f"maxRequestBytes: {200 * MIB}", f"maxRequestBytes: {8 * MIB}")
    with start_swapgate(config) as small:
        fields = ("Transfer-Encoding: chunked", "Connection: close")
        with socket.create_connection((LOCALHOST, small.port), timeout=30) as sock:
            sock.sendall(head(small.port, "POST", "/upstream/a/upload", *fields))
            with contextlib.suppress(OSError):  # the server answers early and closes
                for piece in pattern(20 * MIB):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            answer = b""
            with contextlib.suppress(OSError):
                while data := sock.recv(65536):
                    answer += data
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"maxRequestBytes" in answer
        assert small.post("/upstream/a/next", {"x": 1})[0] == 200


def test_a_streamed_body_that_stalls_is_408(gate: Swapgate) -> None:
    """Past the first MiB the body streams; a pause over bodyIdleTimeout still ends it."""
    reply = run(upload(gate.port, 8 * MIB, chunked=True, stall_after=3 * MIB))
    assert reply.status == 408
    assert "connections.bodyIdleTimeout" in json.loads(reply.body)["error"]["message"]
    assert gate.post("/upstream/a/next", {"x": 1})[0] == 200


def test_a_client_that_leaves_mid_body_costs_nothing(gate: Swapgate) -> None:
    for _ in range(3):
        run(upload(gate.port, 8 * MIB, chunked=False, leave_after=3 * MIB))
    status, _, body = gate.post("/upstream/a/next", {"x": 1})
    assert (status, body["body_bytes"]) == (200, len(json.dumps({"x": 1})))
    # Each upload ends as swapgate notices its client is gone: soon, never held for good.
    wait_until(lambda: gate.running()["a"]["inFlight"] == 0, timeout=5, message="no request left")
