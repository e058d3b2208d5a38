"""The `swapgate` command run for real: one owner per address, the exposure warning, the demo
served without an activated virtual environment, and `swapgate bench` progress in CI logs."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.support.gateway import SWAPGATE, Swapgate, fake_cmd, start_swapgate
from tests.support.procs import (
    LOCALHOST,
    REPO_ROOT,
    free_port,
    http_json,
    kill_group,
    pids_alive,
    spawn,
    wait_until,
)

pytestmark = pytest.mark.integration

ONE_MODEL = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha")}
"""
EXPOSED = "without API keys: anyone who can reach this port can use and unload every model"


def listening_sockets(port: int) -> int:
    """How many TCP sockets listen on `port` (any address), from /proc/net/tcp and tcp6."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def run_swapgate(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run swapgate to completion (it is expected to exit on its own)."""
    return subprocess.run(
        [SWAPGATE, *args], capture_output=True, text=True, timeout=30, check=False, env=env
    )


@contextlib.contextmanager
def serve(
    tmp_path: Path, config: str, *args: str, port: int, env: Mapping[str, str] | None = None
) -> Iterator[Swapgate]:
    """swapgate with `args` on `port` (answering on 127.0.0.1); everything killed on exit."""
    config_path = tmp_path / "config.yaml"
    # A start port that was just free: suites running side by side do not race for 5800.
    config_path.write_text(
        re.sub(r"(?m)^startPort: .*$", "", config) + f"startPort: {free_port()}\n"
    )
    log_path = tmp_path / "swapgate.log"
    with log_path.open("wb") as log:
        proc = spawn(
            [SWAPGATE, "--config", str(config_path), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            **({"env": dict(env)} if env is not None else {}),
        )
    gate = Swapgate(proc, port, log_path)
    descendants: list[int] = []
    try:
        wait_until(lambda: _healthy(gate), 20, message="swapgate /health")
        yield gate
    finally:
        if proc.poll() is None:
            descendants = gate.descendants()
        kill_group(proc)
        for pid in pids_alive(descendants):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, 9)


def _healthy(gate: Swapgate) -> bool:
    if gate.proc.poll() is not None:
        msg = f"swapgate exited with {gate.proc.returncode}:\n{gate.output()}"
        raise RuntimeError(msg)
    try:
        return http_json("GET", gate.url + "/health", timeout=1.0)[0] == 200
    except OSError:
        return False


def test_a_second_swapgate_on_a_busy_port_refuses_to_start(tmp_path: Path) -> None:
    """The second swapgate exits 1 naming the address; the first owns the only listener."""
    with start_swapgate(ONE_MODEL) as first:
        assert listening_sockets(first.port) == 1  # Granian listens on swapgate's socket
        config = tmp_path / "config.yaml"
        config.write_text(ONE_MODEL)
        address = f"{LOCALHOST}:{first.port}"
        second = run_swapgate("--config", str(config), "--listen", address)
        assert second.returncode == 1, second.stderr
        assert f"error: {address} is already in use (another swapgate?)" in second.stderr
        assert "serving" not in second.stderr  # it refused before starting anything
        assert first.chat("alpha")[0] == 200
        assert listening_sockets(first.port) == 1


def test_a_port_shared_with_so_reuseport_is_refused_too(tmp_path: Path) -> None:
    """A listener that allows port sharing (as an older swapgate's did) still blocks the bind."""
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(ONE_MODEL)
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind((LOCALHOST, port))
        other.listen()
        done = run_swapgate("--config", str(config), "--listen", f"{LOCALHOST}:{port}")
    assert done.returncode == 1
    assert f"{LOCALHOST}:{port} is already in use" in done.stderr


def test_listening_beyond_loopback_without_api_keys_warns(tmp_path: Path) -> None:
    """0.0.0.0 without apiKeys logs the exposure warning at start; loopback does not."""
    port = free_port()
    with serve(tmp_path, ONE_MODEL, "--listen", f"0.0.0.0:{port}", port=port) as gate:
        wait_until(lambda: "serving" in gate.output(), 5, message="the start-up log")
        assert f"listening on 0.0.0.0:{port} {EXPOSED}" in gate.output()
        assert f"set apiKeys or keys, or listen on {LOCALHOST}" in gate.output()
    port = free_port()
    with serve(tmp_path, ONE_MODEL, "--listen", f"{LOCALHOST}:{port}", port=port) as gate:
        wait_until(lambda: "serving" in gate.output(), 5, message="the start-up log")
        assert EXPOSED not in gate.output()


@pytest.mark.parametrize(
    "keys", ["apiKeys: [sk-test-key]\n", "keys:\n  - {key: sk-test-key, name: app}\n"]
)
def test_listening_beyond_loopback_with_api_keys_does_not_warn(tmp_path: Path, keys: str) -> None:
    """With apiKeys or keys set, 0.0.0.0 is a deliberate, protected exposure: no warning."""
    port = free_port()
    config = ONE_MODEL + keys
    with serve(tmp_path, config, "--listen", f"0.0.0.0:{port}", port=port) as gate:
        wait_until(lambda: "serving" in gate.output(), 5, message="the start-up log")
        assert "without API keys" not in gate.output()


def test_demo_runs_from_the_installed_command_without_an_activated_venv(tmp_path: Path) -> None:
    """PATH=/usr/bin:/bin, swapgate by absolute path: the demo's models start and answer."""
    fake = Path(sys.executable).parent / "swapgate-fake-upstream"
    assert fake.exists(), "swapgate-fake-upstream is not installed: run pip install -e ."
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env |= {k: v for k, v in os.environ.items() if k == "SWAPGATE_TEST_RUN"}  # leak guard
    demo_path = REPO_ROOT / "examples" / "demo.yaml"
    check = run_swapgate("--config", str(demo_path), "--check", "--strict", env=env)
    assert (check.returncode, check.stderr) == (0, "")  # no "not on PATH" warning either
    demo = demo_path.read_text()
    with serve(tmp_path, demo, "--listen", f"{LOCALHOST}:{port}", port=port, env=env) as gate:
        status, _, body = gate.chat("alpha")
        assert status == 200, (body, gate.output())
        assert "alpha" in body["choices"][0]["message"]["content"]


TWO_MODELS = (
    ONE_MODEL
    + f"""  bravo:
    cmd: {fake_cmd("bravo", say="bravo")}
"""
)
STEP = re.compile(r"^\[(\d+)/(\d+), \d+ s\] (.+)$")


def _bench(*args: str) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """Run `swapgate bench ARGS` with stdout captured (not a terminal); its stdout lines."""
    done = subprocess.run(
        [SWAPGATE, "bench", *args], capture_output=True, text=True, timeout=90, check=False
    )
    return done.stdout.splitlines(), done


def _steps(lines: list[str]) -> list[tuple[int, int, str]]:
    return [(int(m[1]), int(m[2]), m[3]) for line in lines if (m := STEP.match(line))]


def test_bench_default_run_prints_an_estimate_then_a_line_per_step() -> None:
    """`swapgate bench` piped: the run-time estimate comes first, then one line per round."""
    lines, done = _bench("--concurrency", "1", "--duration", "0.3", "--rounds", "1", "--no-pin")
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.fullmatch(r"1 concurrency levels \(1\); estimated run time about \d+ s", lines[0])
    assert lines[1] == "starting swapgate and the fake upstream"
    rounds = [step for step in _steps(lines) if "round" in step[2]]
    assert rounds == [(1, 2, "c=1 round 1 direct"), (2, 2, "c=1 round 1 via")]
    assert "\r" not in done.stdout + done.stderr  # no progress bar in a log


def test_bench_gate_prints_its_rounds_and_an_estimate() -> None:
    """`swapgate bench gate` piped: the level's time estimate, then a line per round."""
    args = ("--rounds", "1", "--duration", "0.3", "--concurrency", "1", "--no-pin")
    lines, done = _bench("gate", *args)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: overhead over the limit
    assert any(
        re.fullmatch(r"c=1: warm-up, then 1 alternated rounds .*about \d+ s", x) for x in lines
    )
    assert [s for s in _steps(lines) if "round" in s[2]][-1] == (2, 2, "c=1 round 1 via")


def test_bench_compare_prints_a_line_per_model_and_the_time_left(tmp_path: Path) -> None:
    """`swapgate bench compare` piped: a plan line, each model's outcome, the time left; and
    `--html` writes one self-contained report with the table and the chart."""
    report = tmp_path / "compare.html"
    with start_swapgate(TWO_MODELS) as gate:
        args = ("--via", gate.url, "--models", "alpha,bravo", "--requests", "2")
        lines, done = _bench("compare", *args, "--concurrency", "1", "--html", str(report))
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert lines[0].startswith("2 models, each: unload all, one cold request, 2 warm requests")
    assert "alpha: unloading everything, then timing a cold load" in lines
    assert any(re.fullmatch(r"about \d+ s more for the other 1", x) for x in lines)
    assert [(done_, total) for done_, total, _ in _steps(lines)] == [(1, 2), (2, 2)]
    assert lines[-1] == f"HTML report written to {report}"
    html = report.read_text(encoding="utf-8")
    assert "<h1>swapgate bench compare</h1>" in html
    assert "<tr><td>alpha</td>" in html
    assert "<tr><td>bravo</td>" in html
    assert html.count("<svg") == 1, "no chart: is matplotlib installed? pip install -e '.[test]'"
    assert "<script" not in html
    assert "<link" not in html
