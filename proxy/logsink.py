"""Where swapgate's own log records go: formatted once, into the log hub (GET /logs) at once
and to stderr from a writer thread.

The request path logs (the access line, state changes), and a write to stderr blocks when
stderr is a pipe whose reader is slow or stopped (`| less`, a stalled journal): that must
never hold the event loop. So a record is formatted once, copied into the hub, and handed to
one thread that writes whatever has queued up in a single write. If stderr stays blocked,
at most `max_pending` lines wait; newer ones are counted and dropped, and a line saying how
many were dropped is written once stderr moves again. Stdlib only.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from typing import TextIO

from swapgate.proxy.loghub import PROXY_SOURCE, LogHub

DEFAULT_MAX_PENDING = 10_000
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StderrWriter:
    """A thread that writes queued lines to `stream`, batched, never blocking the caller."""

    def __init__(self, stream: TextIO, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._stream = stream
        self._max_pending = max_pending
        self._pending: collections.deque[str] = collections.deque()
        self._dropped = 0
        self._writing = False
        self._wake = threading.Condition(threading.Lock())
        self._thread = threading.Thread(target=self._run, name="swapgate-stderr", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """Queue one line (without its newline); drops it when too many are waiting."""
        with self._wake:
            if len(self._pending) >= self._max_pending:
                self._dropped += 1
                return
            self._pending.append(line)
            if len(self._pending) == 1:
                self._wake.notify_all()

    def flush(self, timeout_s: float = 1.0) -> None:
        """Wait (at most `timeout_s`, for a blocked stderr) until everything queued is written.

        The thread is never stopped: logging closes handlers whenever it is reconfigured
        (Granian's start does), and the writer must go on serving after that. It is a daemon
        thread, so it ends with the process."""
        deadline = time.monotonic() + timeout_s
        with self._wake:
            while self._pending or self._writing:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._wake.wait(remaining):
                    return

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                lines = list(self._pending)
                self._pending.clear()
                dropped, self._dropped = self._dropped, 0
                self._writing = True
            if dropped:
                lines.append(f"[{dropped} log lines dropped while stderr was blocked]")
            self._write("\n".join(lines) + "\n")
            with self._wake:
                self._writing = False
                self._wake.notify_all()

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nowhere left to write
            pass


class LogSink(logging.Handler):
    """Formats each record once; the hub gets it at once, stderr through a StderrWriter."""

    def __init__(self, hub: LogHub, writer: StderrWriter) -> None:
        super().__init__()
        self._hub = hub
        self._writer = writer
        self.setFormatter(logging.Formatter(_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except (TypeError, ValueError):  # a malformed call such as log.info("%d", "x")
            self.handleError(record)
            return
        self._hub.write(PROXY_SOURCE, line)
        self._writer.put(line)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        """Write out what is queued; the sink keeps working (see StderrWriter.flush)."""
        self._writer.flush()
        super().close()


def setup_logging(hub: LogHub, level: int) -> None:
    """swapgate's loggers at `level`, through one LogSink into `hub` and stderr."""
    root = logging.getLogger("swapgate")
    root.setLevel(level)
    root.handlers[:] = [LogSink(hub, StderrWriter(sys.stderr))]
    root.propagate = False
