"""Processes under test: spawning, CPU pinning, readiness polling and clean-up.

A :class:`Stack` owns every process a benchmark starts. Each gets its own session (process
group), so stopping it also stops whatever it spawned, and :meth:`Stack.close` runs in a
``finally`` so an interrupted benchmark leaves nothing behind. swapgate is driven only through
its command and its HTTP API: this package never imports ``proxy/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

LOCALHOST = "127.0.0.1"
PROXY_CORE = 0
LOAD_CORE = 1
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def can_pin() -> bool:
    """Pinning needs two usable cores: one for the proxy, one for load + upstream."""
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def pin(pid: int, core: int) -> None:
    """Pin every thread of ``pid`` to ``core`` (a process's threads each have an affinity)."""
    for tid in _threads(pid):
        with contextlib.suppress(ProcessLookupError):  # a thread may exit meanwhile
            os.sched_setaffinity(tid, {core})


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return [pid]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def fake_cmd(model: str, port: str, *extra: str) -> list[str]:
    """The command line of a fake upstream (``port`` may be swapgate's ``${PORT}``)."""
    return [
        sys.executable,
        "-m",
        "swapgate.bench.fake_upstream",
        "--quiet",
        "--port",
        port,
        "--model",
        model,
        *extra,
    ]


def realistic_fake_args(
    ttft_s: float = 0.1, tokens: int = 50, interval_s: float = 0.02
) -> list[str]:
    """First token after 100 ms, then 50 tokens 20 ms apart: a small model on a fast GPU."""
    return ["--ttft", str(ttft_s), "--tokens", str(tokens), "--token-interval", str(interval_s)]


@dataclass
class Stack:
    """The processes of one benchmark; use as a context manager so they are always stopped."""

    pin_cores: bool = True
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def tmpdir(self) -> Path:
        """A private temp folder, removed on close (configs, logs)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="swapgate-bench-")
        return Path(self._tmp.name)

    def spawn(
        self, cmd: Sequence[str], *, core: int | None, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group, its output in a log file under tmpdir."""
        log = (self.tmpdir / f"proc{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            # Pinned in the child before exec, so every thread it ever starts inherits it;
            # pinning from here after the exec would race the program's own thread start-up.
            preexec_fn=_child_setup(core if self.pin_cores else None),
        )
        log.close()  # the child holds its own descriptor
        self.procs.append(proc)
        return proc

    def log_tail(self, proc: subprocess.Popen[bytes], lines: int = 20) -> str:
        """The last lines a spawned process wrote (for error messages)."""
        index = self.procs.index(proc)
        text = (self.tmpdir / f"proc{index}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """SIGTERM every process group, then SIGKILL whatever has not left after 5 s."""
        for proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)  # also reaps grandchildren left in the group
            proc.wait()
        self.procs.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def start_swapgate(
        self, models: Mapping[str, Mapping[str, object]], *, env: Mapping[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], str]:
        """Start swapgate on a free port with ``models`` as its config; returns (proc, URL)."""
        # A free startPort: other swapgates on this machine also count up from 5800, and two
        # that hand out the same port would have their upstreams collide.
        # logLevel stays at its default (info): the access log costs what it costs for users.
        config = {
            "healthCheckTimeout": 30,
            "startPort": free_port(),
            "models": dict(models),
        }
        path = self.tmpdir / "swapgate.yaml"
        path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
        port = free_port()
        cmd = ["swapgate", "--config", str(path), "--listen", f"{LOCALHOST}:{port}"]
        proc = self.spawn(cmd, core=PROXY_CORE, env=env)
        return proc, f"http://{LOCALHOST}:{port}"

    def start_fake(self, model: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
        """Start a fake upstream on a free port on the load core; returns (proc, URL)."""
        port = free_port()
        proc = self.spawn(fake_cmd(model, str(port), *extra), core=LOAD_CORE)
        return proc, f"http://{LOCALHOST}:{port}"


def _child_setup(core: int | None) -> Callable[[], None]:
    def setup() -> None:
        # SIGTERM when the benchmark dies, even by SIGKILL (where no `finally` runs): the
        # server then stops itself and its own children instead of outliving the run.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if core is not None:
            os.sched_setaffinity(0, {core})

    return setup


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def wait_ready(
    url: str,
    proc: subprocess.Popen[bytes] | None = None,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(trust_env=False) as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:  # HTTP OK
                        return
            if proc is not None and proc.poll() is not None:
                msg = f"{url}: the process exited with status {proc.returncode} before it was ready"
                raise RuntimeError(msg)
            if time.monotonic() >= deadline:
                msg = f"{url} did not answer 200 within {timeout_s:g}s"
                raise TimeoutError(msg)
            await asyncio.sleep(interval_s)


async def get_json(url: str, method: str = "GET") -> object:
    """One control request (not part of any measurement)."""
    async with (
        aiohttp.ClientSession(trust_env=False) as session,
        session.request(method, url, timeout=aiohttp.ClientTimeout(total=60)) as resp,
    ):
        resp.raise_for_status()
        return await resp.json(content_type=None)


async def running_backend(via_url: str, model: str) -> tuple[str, int]:
    """(upstream URL, pid) of ``model``'s running backend, from swapgate's GET /running."""
    data = await get_json(via_url + "/running")
    records = data.get("running", []) if isinstance(data, dict) else []
    for record in records:
        if isinstance(record, dict) and record.get("model") == model:
            # The fake binds 127.0.0.1 only: skip a resolver round trip and an IPv6 attempt.
            url = str(record["proxy"]).replace("//localhost:", f"//{LOCALHOST}:")
            return url, int(record["pid"])
    msg = f"{model} is not in {via_url}/running: {data}"
    raise RuntimeError(msg)


def ensure_stopped(proc: subprocess.Popen[bytes]) -> None:
    """Stop one process group now (SIGKILL: its exit time is not what is measured)."""
    _signal_group(proc, signal.SIGKILL)
    proc.wait()
