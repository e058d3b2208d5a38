"""LogSink and StderrWriter: one format per record, the hub at once, stderr never blocking."""

from __future__ import annotations

import io
import logging
import os
import threading
import time

from swapgate.proxy.loghub import LogHub
from swapgate.proxy.logsink import LogSink, StderrWriter
from tests.support.procs import wait_until


def _logger(sink: LogSink, name: str) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers[:] = [sink]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def test_a_record_reaches_the_hub_at_once_and_stderr_soon() -> None:
    stream = io.StringIO()
    hub = LogHub()
    sink = LogSink(hub, StderrWriter(stream))
    log = _logger(sink, "swapgate.test.sink")
    log.info("hello %s", "there")
    assert hub.tail()[-1].endswith("INFO swapgate.test.sink: hello there")
    sink.close()  # writes out what is queued
    assert stream.getvalue().endswith("INFO swapgate.test.sink: hello there\n")
    log.info("after close")  # logging closes handlers when it is reconfigured: still served
    sink.flush()
    assert stream.getvalue().endswith("INFO swapgate.test.sink: after close\n")


def test_a_blocked_stderr_never_blocks_the_caller_and_drops_beyond_the_bound() -> None:
    """stderr is a pipe nobody reads: logging 5,000 lines still returns at once; what did not
    fit is counted, and the count is written once the pipe drains."""
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    hub = LogHub()
    writer = StderrWriter(stream, max_pending=100)
    log = _logger(LogSink(hub, writer), "swapgate.test.blocked")
    started = time.monotonic()
    for index in range(5_000):
        log.info("line %d %s", index, "x" * 200)  # 5,000 x 250 B: far beyond a 64 KiB pipe
    assert time.monotonic() - started < 2.0
    assert len(hub.tail(lines=10_000)) > 0

    received: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(read_end, 65536):
            received.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def received_with(needle: str) -> str | None:
        text = b"".join(received).decode()
        return text if needle in text else None

    wait_until(lambda: received_with("log lines dropped while stderr was blocked]"))
    log.info("after the stall")
    wait_until(lambda: received_with("after the stall"), message="the line after the stall")
    writer.flush()
    stream.close()
    reader.join(2)
    os.close(read_end)


def test_a_bad_format_call_is_reported_not_raised() -> None:
    hub = LogHub()
    sink = LogSink(hub, StderrWriter(io.StringIO()))
    log = _logger(sink, "swapgate.test.bad")
    raise_exceptions = logging.raiseExceptions
    logging.raiseExceptions = False  # what a served process has: no traceback to stderr
    try:
        log.info("%d", "not a number")
    finally:
        logging.raiseExceptions = raise_exceptions
    assert hub.tail() == []
    sink.close()
