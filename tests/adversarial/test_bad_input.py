"""Hostile and malformed requests on real sockets: each gets its exact status, the next normal
request is answered, and no child process or file descriptor is left behind.

One swapgate (with a fake upstream model) serves the whole module; every case is sent on a
fresh raw TCP connection, so nothing a client library would fix up is fixed up.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import LOCALHOST, wait_until

pytestmark = pytest.mark.integration

MAX_REQUEST_BYTES = 60_000_000
CONFIG = f"""
maxRequestBytes: {MAX_REQUEST_BYTES}
models:
  alpha:
    cmd: {fake_cmd("alpha", startup_delay=0, ttft=0, tokens=2)}
"""


@pytest.fixture(scope="module")
def gate() -> Iterator[Swapgate]:
    with start_swapgate(CONFIG) as running:
        assert running.chat("alpha")[0] == 200  # the model runs before the first case
        yield running


def exchange(port: int, data: bytes, timeout: float = 20.0) -> int | None:
    """Send `data` on a new connection; the response's status, or None if it was closed."""
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        # The server may refuse before all was sent; its answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        head = b""
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n" not in head:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                head += chunk
    if not head.startswith(b"HTTP/1."):
        return None
    return int(head.split(b" ", 2)[1])


def _request(method: str, target: str, port: int, headers: bytes = b"", body: bytes = b"") -> bytes:
    start = f"{method} {target} HTTP/1.1\r\nHost: {LOCALHOST}:{port}\r\n".encode()
    sized = b"Content-Length: %d\r\n" % len(body) if body or method == "POST" else b""
    return start + headers + sized + b"\r\n" + body


def _post_json(body: bytes, path: str = "/v1/chat/completions") -> Callable[[int], bytes]:
    return lambda port: _request("POST", path, port, b"Content-Type: application/json\r\n", body)


def _chunked(total: int, chunk: int = 1 << 20) -> Callable[[int], bytes]:
    """A chunked JSON body of `total` bytes (valid JSON when it is all sent)."""

    def build(port: int) -> bytes:
        head = b'{"model":"alpha","pad":"'
        tail = b'"}'
        pad = total - len(head) - len(tail)
        pieces = [head, *([b"a" * chunk] * (pad // chunk)), b"a" * (pad % chunk), tail]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
        headers = b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        return _request("POST", "/v1/chat/completions", port, headers) + body

    return build


def _raw(data: bytes) -> Callable[[int], bytes]:
    return lambda port: data.replace(b"{port}", str(port).encode())


NESTED = b'{"model":"alpha","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
BIG_JSON = b'{"model":"alpha","messages":[],"pad":"' + b"a" * 50_000_000 + b'"}'
HOST = b"Host: 127.0.0.1:{port}\r\n"

CASES: dict[str, tuple[Callable[[int], bytes], int]] = {
    "malformed JSON": (_post_json(b'{"model":'), 400),
    "a JSON array": (_post_json(b"[1,2]"), 400),
    "100,000-level nesting": (_post_json(NESTED), 400),
    "non-UTF-8 body": (_post_json(b'{"model":"\xff\xfe"}'), 400),
    "CR/LF in the model name": (_post_json(b'{"model":"a\\r\\nX-Evil: 1"}'), 404),
    "NUL in the model name": (_post_json(b'{"model":"a\\u0000b"}'), 404),
    "a path as the model name": (_post_json(b'{"model":"../../etc/passwd"}'), 404),
    "a URL as the model name": (_post_json(b'{"model":"http://evil.example/x"}'), 404),
    "a 50 MB body": (_post_json(BIG_JSON), 200),
    "a chunked body over maxRequestBytes": (_chunked(MAX_REQUEST_BYTES + (1 << 20)), 413),
    "traversal out of /upstream": (
        _raw(b"GET /upstream/../running HTTP/1.1\r\n" + HOST + b"\r\n"),
        404,
    ),
    "encoded traversal out of /upstream": (
        _raw(b"GET /upstream/%2e%2e/running HTTP/1.1\r\n" + HOST + b"\r\n"),
        404,
    ),
    "10,000 headers": (
        _raw(
            b"GET /health HTTP/1.1\r\n"
            + HOST
            + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
            + b"\r\n"
        ),
        431,
    ),
    "a 1 MB header": (
        _raw(b"GET /health HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"),
        431,
    ),
    "Content-Length with Transfer-Encoding": (
        _raw(
            b"POST /v1/chat/completions HTTP/1.1\r\n" + HOST + b"Content-Type: application/json"
            b"\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        400,
    ),
    "two different Content-Lengths": (
        _raw(
            b"POST /v1/chat/completions HTTP/1.1\r\n" + HOST + b"Content-Type: application/json"
            b"\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n{}{}x"
        ),
        400,
    ),
    "HTTP/1.0 without Host": (_raw(b"GET /health HTTP/1.0\r\n\r\n"), 200),
    "an absolute-form target": (
        _raw(b"GET http://127.0.0.1:{port}/health HTTP/1.1\r\n" + HOST + b"\r\n"),
        200,
    ),
}


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_its_status_and_leaves_nothing_behind(gate: Swapgate, case: str) -> None:
    build, status = CASES[case]
    children = sorted(gate.descendants())
    fds = _fds(gate.proc.pid)
    assert exchange(gate.port, build(gate.port)) == status
    assert gate.chat("alpha")[0] == 200  # the next normal request is answered
    assert sorted(gate.descendants()) == children
    # Connections close asynchronously, and extra upstream connections live a second idle.
    wait_until(lambda: _fds(gate.proc.pid) <= fds, timeout=10, message=f"fds back to {fds}")


def test_traversal_inside_upstream_stays_with_the_model(gate: Swapgate) -> None:
    """Dot segments under /upstream/alpha/ reach alpha's own server, never swapgate's API."""
    for target in ("/upstream/alpha/../../running", "/upstream/alpha/%2e%2e/%2e%2e/running"):
        data = _request("GET", target, gate.port)
        with socket.create_connection((LOCALHOST, gate.port), timeout=10) as sock:
            sock.sendall(data)
            answer = b""
            while b"}" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert b'"echo":true' in answer  # the fake upstream's echo, not swapgate's /running
        assert b'"running"' not in answer
