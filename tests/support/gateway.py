"""Run the real `swapgate` command (Granian, embedded) on a free port for a test."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.procs import (
    LOCALHOST,
    LocalServer,
    child_env,
    children_of,
    fake_upstream_argv,
    free_port,
    free_port_block,
    http_json,
    kill_group,
    pids_alive,
    spawn,
    wait_until,
)

SWAPGATE = str(Path(sys.executable).parent / "swapgate")


def fake_cmd(model: str, **flags: object) -> str:
    """A `cmd:` line that starts the fake upstream for `model` on ${PORT}."""
    argv = fake_upstream_argv(0, model=model, **flags)
    argv[argv.index("--port") + 1] = "${PORT}"
    return " ".join(a if a == "${PORT}" else shlex.quote(a) for a in argv)


@dataclass(slots=True)
class Swapgate(LocalServer):
    """A running swapgate process, its base URL and the config file it was started with."""

    config_path: Path | None = None

    def get(self, path: str, **kw: Any) -> tuple[int, dict[str, str], Any]:
        return http_json("GET", self.url + path, **kw)

    def post(self, path: str, body: object = None, **kw: Any) -> tuple[int, dict[str, str], Any]:
        return http_json("POST", self.url + path, body, **kw)

    def chat(
        self, model: str, headers: Mapping[str, str] | None = None, **extra: object
    ) -> tuple[int, dict[str, str], Any]:
        """POST a one-message chat for `model`; `extra` goes into the JSON body."""
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
        return self.post("/v1/chat/completions", body, headers=headers, timeout=30.0)

    def running(self) -> dict[str, dict[str, Any]]:
        """GET /running as {model: record}."""
        _, _, body = self.get("/running")
        return {record["model"]: record for record in body["running"]}

    def descendants(self) -> list[int]:
        """Every process below swapgate except its warden (which guards the model groups)."""
        return [p for p in children_of(self.proc.pid, recursive=True) if not _is_warden(p)]

    def warden(self) -> int | None:
        """The warden's pid, once a model has been started."""
        found = [p for p in children_of(self.proc.pid) if _is_warden(p)]
        return found[0] if found else None

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@contextlib.contextmanager
def start_swapgate(
    config_yaml: str,
    *,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 15.0,
    extra_args: Sequence[str] = (),
) -> Iterator[Swapgate]:
    """Write `config_yaml` to a temp file, serve it (with `extra_args` on the command line),
    and kill everything on exit. The file stays at `gate.config_path` for the test to edit."""
    with tempfile.TemporaryDirectory(prefix="swapgate-test-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(_with_start_port(config_yaml))
        log_path = Path(tmp) / "swapgate.log"
        port = free_port()
        argv = [SWAPGATE, "--config", str(config), "--listen", f"{LOCALHOST}:{port}", *extra_args]
        env = child_env({**(extra_env or {}), "PYTHONUNBUFFERED": "1"})
        with log_path.open("wb") as log:
            proc = spawn(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        gate = Swapgate(proc, port, log_path, config)
        descendants: list[int] = []
        try:
            wait_until(lambda: _healthy(gate), timeout, message="swapgate /health")
            yield gate
        finally:
            if gate.proc.poll() is None:
                descendants = gate.descendants()
            kill_group(gate.proc)
            # Children live in their own process groups: make sure none outlives the test.
            for pid in pids_alive(descendants):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def _is_warden(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(arg.endswith(b"/lifecycle/warden.py") for arg in argv)


def _with_start_port(config_yaml: str) -> str:
    """The config with `startPort` set to the first of a block of ports that were just free,
    below the ephemeral range, unless it sets one: ${PORT} models of tests running side by
    side then do not all race for 5800, 5801, ..., and never meet an outgoing connection's
    port or swapgate's own listener."""
    if re.search(r"^startPort:", config_yaml, re.MULTILINE):
        return config_yaml
    return f"startPort: {free_port_block()}\n" + config_yaml


def _healthy(gate: Swapgate) -> bool:
    if gate.proc.poll() is not None:
        msg = f"swapgate exited with {gate.proc.returncode}:\n{gate.output()}"
        raise RuntimeError(msg)
    try:
        return gate.get("/health", timeout=1.0)[0] == 200
    except OSError:
        return False
