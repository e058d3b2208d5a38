"""Relay correctness through a real swapgate: concurrency past maxConnections, aborted bodies,
framing headers, Connection-named headers, retries and the per-model upstream timeouts.

Most tests put a scripted raw-socket HTTP server (in a thread of this process, on 127.0.0.1
port 0) behind swapgate, so each can misbehave in exactly one way at exactly one point.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import LOCALHOST, free_port, iter_sse, wait_until

pytestmark = pytest.mark.integration

IO_TIMEOUT_S = 10.0
MODEL = "raw"


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the raw upstream read: on which connection, and what it carried."""

    conn: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """What the raw upstream does with a request: send `data` after `delay_s`, then close
    the connection if `close` (with no data: close without answering)."""

    data: bytes = b""
    close: bool = False
    delay_s: float = 0.0


def response(
    status: str, headers: dict[str, str], body: bytes = b"", *, close: bool = False
) -> Reply:
    """A Reply holding a response (Content-Length only where `headers` say so)."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return Reply(f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body, close)


def ok(body: bytes = b'{"ok": true}') -> Reply:
    """A small JSON 200."""
    return response(
        "200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))}, body
    )


@dataclass
class RawUpstream:
    """A scripted HTTP/1.1 server: `answer(seen)` decides each reply; one thread per
    connection; records every request and which connections the peer closed."""

    answer: Callable[[Seen], Reply]
    seen: list[Seen] = field(default_factory=list)
    peer_closed: set[int] = field(default_factory=set)
    _sock: socket.socket = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._sock = socket.create_server((LOCALHOST, 0))
        self._sock.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self._sock.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        self._sock.close()

    def _accept(self) -> None:
        conns = 0
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, conns), daemon=True).start()
            conns += 1

    def _serve(self, conn: socket.socket, index: int) -> None:
        conn.settimeout(IO_TIMEOUT_S)
        with conn, conn.makefile("rb") as reader, contextlib.suppress(OSError):
            while (seen := _read_request(reader, index)) is not None:
                self.seen.append(seen)
                reply = self.answer(seen)
                time.sleep(reply.delay_s)
                conn.sendall(reply.data)
                if reply.close:
                    return
            self.peer_closed.add(index)


def _read_request(reader: BinaryIO, index: int) -> Seen | None:
    line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return Seen(index, method, path, headers, reader.read(length) if length else b"")


@contextlib.contextmanager
def raw_gate(
    answer: Callable[[Seen], Reply], extra: str = ""
) -> Iterator[tuple[Swapgate, RawUpstream]]:
    """swapgate in front of a RawUpstream (model `raw`, no health check)."""
    upstream = RawUpstream(answer)
    config = f"""
models:
  {MODEL}:
    cmd: {sys.executable} -c "import time; time.sleep(600)"
    proxy: {upstream.url}
    checkEndpoint: none
{extra}"""
    try:
        with start_swapgate(config) as gate:
            yield gate, upstream
    finally:
        upstream.close()


@contextlib.contextmanager
def connect(gate: Swapgate) -> Iterator[http.client.HTTPConnection]:
    """A client connection to swapgate that sends exactly the headers it is given."""
    conn = http.client.HTTPConnection(LOCALHOST, gate.port, timeout=IO_TIMEOUT_S)
    try:
        yield conn
    finally:
        conn.close()


def request(
    gate: Swapgate, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a fresh client connection; returns the response and its whole body."""
    with connect(gate) as conn:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()


# ---- 1. concurrency --------------------------------------------------------------------------


def test_requests_beyond_max_connections_do_not_wait_and_idle_connections_stay_bounded() -> None:
    """Eight 1 s requests with maxConnections 2 finish together; at most 2 connections stay."""
    config = f"""
startPort: {free_port()}  # not 5800: other swapgates on this machine count up from it
models:
  alpha:
    cmd: {fake_cmd("alpha", ttft=1.0, tokens=2)}
    maxConnections: 2
"""
    with start_swapgate(config) as gate:
        assert gate.chat("alpha")[0] == 200  # started, one pooled connection open
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: gate.chat("alpha")[0], range(8)))
        elapsed = time.monotonic() - started
        assert statuses == [200] * 8
        assert elapsed < 2.5, f"took {elapsed:.2f}s: requests queued for a pooled connection"

        def idle_bounded() -> bool:
            _, _, stats = gate.get("/upstream/alpha/debug/stats")
            return bool(stats["connections_active"] <= 2)

        wait_until(idle_bounded, timeout=5, message="overflow connections closed")
        _, _, stats = gate.get("/upstream/alpha/debug/stats")
        assert stats["connections_opened"] >= 7  # six overflow ones beside the two pooled


# ---- 2a. an upstream dying mid-body ----------------------------------------------------------


def test_upstream_death_mid_chunked_body_aborts_the_client_response() -> None:
    """Half a chunked JSON body, then the upstream dies: the client sees no final chunk."""
    head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    half = response("200 OK", head, b'b\r\n{"half": "x\r\n', close=True)
    with raw_gate(lambda _: half) as (gate, _upstream), connect(gate) as conn:
        conn.request("GET", f"/upstream/{MODEL}/doc")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead) as cut:
            resp.read()
        assert cut.value.partial == b'{"half": "x'


def test_upstream_death_mid_large_sized_body_aborts_with_fewer_bytes() -> None:
    """A 2 MiB body cut after 1 MiB: Content-Length is kept and the client gets fewer bytes."""
    size = 2 << 20
    head = {"Content-Type": "application/json", "Content-Length": str(size)}
    half = response("200 OK", head, b"x" * (size // 2), close=True)
    with raw_gate(lambda _: half) as (gate, _upstream), connect(gate) as conn:
        conn.request("GET", f"/upstream/{MODEL}/doc")
        resp = conn.getresponse()
        assert resp.getheader("content-length") == str(size)
        with pytest.raises(http.client.IncompleteRead) as cut:
            resp.read()
        assert len(cut.value.partial) < size


def test_upstream_death_mid_small_sized_body_is_a_502() -> None:
    """A small sized body is read whole first, so its upstream dying is a clean 502."""
    head = {"Content-Type": "application/json", "Content-Length": "100"}
    half = response("200 OK", head, b'{"half": ', close=True)
    with raw_gate(lambda _: half) as (gate, _upstream):
        status, _, body = gate.get(f"/upstream/{MODEL}/doc")
        assert status == 502
        assert body["error"]["type"] == "upstream_error"


# ---- 2b. Connection-named headers ------------------------------------------------------------


def test_headers_named_by_connection_are_dropped_both_ways() -> None:
    """X-Trace named by the client's Connection and X-Secret by the upstream's go no further."""
    reply = response(
        "200 OK",
        {
            "Content-Length": "2",
            "Content-Type": "application/json",
            "Connection": "keep-alive, X-Secret",
            "X-Secret": "s",
            "X-Other": "o",
        },
        b"{}",
    )
    with raw_gate(lambda _: reply) as (gate, upstream):
        resp, _ = request(
            gate,
            "GET",
            f"/upstream/{MODEL}/x",
            {"Connection": "keep-alive, X-Trace", "X-Trace": "t1", "X-Keep": "k"},
        )
        assert resp.status == 200
        sent = upstream.seen[-1].headers
        assert sent["x-keep"] == "k"
        assert "x-trace" not in sent
        assert "keep-alive" not in sent
        assert resp.getheader("x-other") == "o"
        assert resp.getheader("x-secret") is None


# ---- 2c. framing headers ---------------------------------------------------------------------


def test_a_large_sized_body_keeps_its_content_length() -> None:
    """A 2 MiB sized body reaches the client sized, not chunked, and whole."""
    body = b"y" * (2 << 20)
    reply = response("200 OK", {"Content-Length": str(len(body))}, body)
    with raw_gate(lambda _: reply) as (gate, _upstream):
        resp, got = request(gate, "GET", f"/upstream/{MODEL}/big")
        assert resp.getheader("content-length") == str(len(body))
        assert resp.getheader("transfer-encoding") is None
        assert got == body


def test_head_keeps_the_upstream_framing_and_has_no_body() -> None:
    """HEAD keeps the GET's Content-Length and sends no body (the connection stays usable)."""

    def answer(seen: Seen) -> Reply:
        if seen.path == "/sized":
            return response("200 OK", {"Content-Type": "text/plain", "Content-Length": "12345"})
        if seen.path == "/chunked":
            return response(
                "200 OK", {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"}
            )
        return ok()

    with raw_gate(answer) as (gate, _upstream), connect(gate) as conn:
        conn.request("HEAD", f"/upstream/{MODEL}/sized")
        resp = conn.getresponse()
        assert (resp.status, resp.getheader("content-length")) == (200, "12345")
        assert resp.read() == b""
        conn.request("HEAD", f"/upstream/{MODEL}/chunked")
        resp = conn.getresponse()
        # Granian leaves Transfer-Encoding out of HEAD responses; what matters is no false
        # "Content-Length: 0" and no body.
        assert resp.getheader("content-length") is None
        assert resp.read() == b""
        conn.request("GET", f"/upstream/{MODEL}/after")  # no stray body bytes on the wire
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b'{"ok": true}')


@pytest.mark.parametrize(
    ("status", "headers"),
    [("204 No Content", {"X-A": "1"}), ("304 Not Modified", {"ETag": '"v1"'})],
)
def test_204_and_304_gain_no_content_type_and_no_body(status: str, headers: dict[str, str]) -> None:
    """Bodiless statuses come back with the upstream's headers and nothing added."""

    def answer(seen: Seen) -> Reply:
        return response(status, headers) if seen.path == "/empty" else ok()

    with raw_gate(answer) as (gate, _upstream), connect(gate) as conn:
        conn.request("GET", f"/upstream/{MODEL}/empty")
        resp = conn.getresponse()
        assert resp.status == int(status.split()[0])
        assert resp.getheader("content-type") is None
        assert resp.getheader("content-length") is None
        assert resp.getheader("transfer-encoding") is None
        assert resp.read() == b""
        for name, value in headers.items():
            assert resp.getheader(name) == value
        conn.request("GET", f"/upstream/{MODEL}/after")
        assert conn.getresponse().status == 200


# ---- 2d. retries -----------------------------------------------------------------------------


def _reset_second_request(seen: Seen) -> Reply:
    """Answer the first request on connection 0, close it on reading the second."""
    if seen.conn == 0 and seen.path == "/second":
        return Reply(close=True)
    return ok()


def test_a_get_on_a_reset_pooled_connection_is_retried() -> None:
    """An idempotent request cut before its response is sent again on a fresh connection."""
    with raw_gate(_reset_second_request) as (gate, upstream):
        assert gate.get(f"/upstream/{MODEL}/first")[0] == 200
        status, _, body = gate.get(f"/upstream/{MODEL}/second")
        assert status == 200, body
        assert [(s.conn, s.path) for s in upstream.seen] == [
            (0, "/first"),
            (0, "/second"),
            (1, "/second"),
        ]


def test_a_post_that_may_have_reached_the_server_is_not_sent_again() -> None:
    """A POST whose connection broke after it was written answers 502, sent exactly once."""
    with raw_gate(_reset_second_request) as (gate, upstream):
        assert gate.post(f"/upstream/{MODEL}/first", b"{}")[0] == 200
        status, _, body = gate.post(f"/upstream/{MODEL}/second", b"{}")
        assert status == 502
        assert body["error"]["type"] == "upstream_error"
        assert [s.path for s in upstream.seen] == ["/first", "/second"]


# ---- 2e. timeouts ----------------------------------------------------------------------------


def test_response_header_timeout_gives_504_naming_it_and_the_model() -> None:
    """timeouts.responseHeader: 1 ends a silent upstream's wait with 504 after about 1 s."""
    extra = "    timeouts:\n      responseHeader: 1\n"
    with raw_gate(lambda _: Reply(ok().data, delay_s=3.0), extra) as (gate, _upstream):
        started = time.monotonic()
        status, _, body = gate.get(f"/upstream/{MODEL}/slow", timeout=IO_TIMEOUT_S)
        elapsed = time.monotonic() - started
        assert status == 504
        error = body["error"]
        assert error["code"] == "upstream_timeout"
        assert "responseHeader" in error["message"]
        assert repr(MODEL) in error["message"]
        assert 0.9 < elapsed < 2.5


def test_response_header_timeout_never_cuts_a_stream_that_is_producing() -> None:
    """A 2 s stream outlives responseHeader: 1, since its headers came at once."""
    config = f"""
startPort: {free_port()}  # not 5800: other swapgates on this machine count up from it
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", tokens=8, token_interval=0.25)}
    timeouts:
      responseHeader: 1
"""
    chat = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with start_swapgate(config) as gate:
        events = list(iter_sse(gate.url + "/v1/chat/completions", chat))
        assert events[-1].data == "[DONE]"
        assert sum('"content":" alpha"' in e.data for e in events) == 8
        assert events[-1].at - events[0].at > 1.5


def test_idle_conn_closes_idle_pooled_connections() -> None:
    """timeouts.idleConn: 1 closes the pooled connection about a second after its last use."""
    extra = "    timeouts:\n      idleConn: 1\n"
    with raw_gate(lambda _: ok(), extra) as (gate, upstream):
        assert gate.get(f"/upstream/{MODEL}/x")[0] == 200
        assert upstream.peer_closed == set()
        wait_until(lambda: upstream.peer_closed == {0}, timeout=5, message="idle connection closed")
