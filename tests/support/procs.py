"""Helpers for tests that spawn processes and talk HTTP to them.

Every spawned process gets its own process group, so ``kill_group`` also reaps anything it
started. Waiting is deadline polling (``wait_until``), never a fixed sleep. HTTP helpers use
only the standard library and ignore ``*_proxy`` environment variables, so tests need no extra
client and never route 127.0.0.1 through a proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import inspect
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCALHOST = "127.0.0.1"
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# ---------------------------------------------------------------------------------------------
# ports and polling
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


# Below Linux's ephemeral range (32768-60999 by default): no outgoing connection of this
# machine is ever given one of these as its local port, so a port found free here stays free
# for a server to listen on (an outgoing connection's port can be bound, but not listened on).
_SERVER_PORTS = range(20000, 32000)


def free_port_block(size: int = 16) -> int:
    """The first of `size` consecutive ports below the ephemeral range, all free a moment ago:
    a config's `startPort`, so its ${PORT} models never land on a port that some outgoing
    connection (or swapgate's own listener, which free_port() picks) holds."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(_SERVER_PORTS.start, _SERVER_PORTS.stop - size)
        if all(_bindable(port) for port in range(base, base + size)):
            return base
    msg = f"no {size} consecutive free ports in {_SERVER_PORTS}"
    raise RuntimeError(msg)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    *,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value and return that value.

    Raises ``TimeoutError`` naming ``message`` when ``timeout`` seconds pass first. The
    predicate is always tried once more at the deadline, so a slow machine gets the full time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g}s waiting for {message}"
            raise TimeoutError(msg)
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,  # noqa: ASYNC109  # a polling deadline, the same as wait_until's
    interval: float = 0.02,
    *,
    message: str = "condition",
) -> T:
    """``wait_until`` for async tests; ``predicate`` may be a plain or an async callable."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        value: T = await result if inspect.isawaitable(result) else result
        if value:
            return value
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g}s waiting for {message}"
            raise TimeoutError(msg)
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment with the repository root on ``PYTHONPATH`` (so ``-m bench...`` works)."""
    env = dict(os.environ)
    parts = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def spawn(argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group); ``kw`` goes to ``Popen``.

    stdin defaults to ``/dev/null`` and the environment to ``child_env()``. Pass ``stdout`` and
    ``stderr`` yourself; a ``PIPE`` nobody reads blocks the child once it fills.
    """
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("env", child_env())
    return subprocess.Popen(list(argv), start_new_session=True, **kw)


def kill_group(proc: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGKILL ``proc``'s whole process group, reap ``proc`` and return its exit status."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout)


def _read_stat(pid: str) -> tuple[str, int] | None:
    """(state, ppid) from ``/proc/PID/stat``, or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def children_of(pid: int, *, recursive: bool = False) -> list[int]:
    """PIDs whose parent is ``pid`` (all descendants when ``recursive``), from ``/proc``."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _read_stat(entry)) is not None:
            parents.setdefault(stat[1], []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found.extend(kids)
        if recursive:
            todo.extend(kids)
    return sorted(found)


def pids_alive(pids: Sequence[int]) -> list[int]:
    """The subset of ``pids`` still running; zombies (exited, not yet reaped) count as gone."""
    alive = []
    for pid in pids:
        stat = _read_stat(str(pid))
        if stat is not None and stat[0] != "Z":
            alive.append(pid)
    return alive


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def http_json(
    method: str,
    url: str,
    body: object = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; returns (status, lower-cased headers, parsed JSON body).

    ``body`` is sent as JSON unless it is ``bytes``. Error statuses are returned, not raised.
    A body that is not JSON comes back as text, an empty one as ``None``.
    """
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310  # tests build the URL
    if data is not None and not isinstance(body, bytes):
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with _NO_PROXY_OPENER.open(req, timeout=timeout) as resp:
            status, resp_headers, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, resp_headers, raw = exc.code, exc.headers, exc.read()
    parsed: Any = None
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", errors="replace")
    return status, {k.lower(): v for k, v in resp_headers.items()}, parsed


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event and when its last line arrived (``time.monotonic()``)."""

    at: float
    data: str
    event: str | None = None


def iter_sse(
    url: str, body: object, headers: Mapping[str, str] | None = None, timeout: float = 10.0
) -> Generator[SseEvent, None, None]:
    """POST ``body`` as JSON and yield each SSE event as it arrives.

    Reads whatever the socket delivers, so the arrival times show whether the server (or a
    proxy in between) streams or buffers. Ends when the server ends the response; raises
    ``http.client.IncompleteRead`` when the connection drops before the response is complete.
    Closing the generator closes the connection.
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or LOCALHOST, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request("POST", path, body=json.dumps(body).encode(), headers=all_headers)
        resp = conn.getresponse()
        parser = SseParser()
        # read1() raises IncompleteRead on a cut chunked body, where readline() returns b"".
        while chunk := resp.read1(65536):
            yield from parser.feed(chunk, time.monotonic())
        if resp.length:  # a Content-Length body that ended early
            received = b""
            raise http.client.IncompleteRead(received, resp.length)
    finally:
        conn.close()


class SseParser:
    """Splits a byte stream into SSE events (``event:`` and ``data:`` fields only); feed it
    chunks as they arrive."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes, at: float) -> Iterator[SseEvent]:
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        for line in lines:
            text = line.decode().rstrip("\r")
            if text.startswith("data:"):
                self._data.append(text[5:].removeprefix(" "))
            elif text.startswith("event:"):
                self._event = text[6:].strip()
            elif not text and self._data:
                yield SseEvent(at, "\n".join(self._data), self._event)
                self._event, self._data = None, []


# ---------------------------------------------------------------------------------------------
# the fake upstream
# ---------------------------------------------------------------------------------------------

Ready = Literal["healthy", "listening", "spawned"]


def fake_upstream_argv(port: int, **flags: object) -> list[str]:
    """The command line that runs ``bench.fake_upstream`` on ``port`` with ``flags``.

    ``token_interval=0.1`` becomes ``--token-interval 0.1``; ``True`` adds a bare flag and
    ``False``/``None`` leave it out. Run it with ``child_env()`` (or from the repository root).
    """
    argv = [sys.executable, "-m", "swapgate.bench.fake_upstream", "--port", str(port)]
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv


@dataclass(slots=True)
class LocalServer:
    """A process serving HTTP on a 127.0.0.1 port, with its output in a log file."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://{LOCALHOST}:{self.port}"

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")


@dataclass(slots=True)
class FakeUpstream(LocalServer):
    """A running ``bench.fake_upstream`` process."""

    def stats(self) -> dict[str, Any]:
        """The counters from ``GET /debug/stats``."""
        status, _, body = http_json("GET", self.url + "/debug/stats")
        if status != 200 or not isinstance(body, dict):
            msg = f"/debug/stats answered {status}: {body!r}"
            raise RuntimeError(msg)
        return body

    def is_healthy(self) -> bool:
        """True when ``/health`` answers 200 (False on any connection error)."""
        try:
            return http_json("GET", self.url + "/health", timeout=1.0)[0] == 200
        except OSError:
            return False

    def is_listening(self) -> bool:
        """True when the port accepts TCP connections."""
        with contextlib.suppress(OSError), socket.create_connection((LOCALHOST, self.port), 1.0):
            return True
        return False

    def wait_ready(self, ready: Ready, timeout: float = 10.0) -> None:
        """Wait until the fake is ``healthy`` or ``listening``; fail fast if it exits."""
        if ready == "spawned":
            return
        probe = self.is_healthy if ready == "healthy" else self.is_listening

        def check() -> bool:
            if self.proc.poll() is not None:
                msg = f"fake upstream exited with {self.proc.returncode}:\n{self.output()}"
                raise RuntimeError(msg)
            return probe()

        wait_until(check, timeout, message=f"fake upstream on port {self.port} to be {ready}")


@contextlib.contextmanager
def start_fake_upstream(
    *, ready: Ready | None = None, timeout: float = 10.0, **flags: object
) -> Iterator[FakeUpstream]:
    """Run ``python -m swapgate.bench.fake_upstream`` on a free port for the ``with`` block.

    ``flags`` are its command-line options in Python spelling (``startup_delay=0.5``,
    ``fail_health=True``). ``ready`` says what to wait for before entering the block; by default
    ``healthy`` (``/health`` is 200), but ``listening`` with ``startup_delay`` or
    ``fail_health`` and ``spawned`` with ``exit_on_start``. stdout and stderr go to a temporary
    file (``.output()``). The process group is SIGKILLed on exit.
    """
    if ready is None:
        if flags.get("exit_on_start") is not None:
            ready = "spawned"
        elif flags.get("startup_delay") or flags.get("fail_health"):
            ready = "listening"
        else:
            ready = "healthy"
    port = free_port()
    fd, log_name = tempfile.mkstemp(prefix="fake-upstream-", suffix=".log")
    log_path = Path(log_name)
    try:
        with os.fdopen(fd, "wb") as log:
            proc = spawn(fake_upstream_argv(port, **flags), stdout=log, stderr=subprocess.STDOUT)
        try:
            fake = FakeUpstream(proc, port, log_path)
            fake.wait_ready(ready, timeout)
            yield fake
        finally:
            kill_group(proc)
    finally:
        log_path.unlink(missing_ok=True)
