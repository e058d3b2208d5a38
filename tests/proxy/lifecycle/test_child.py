"""ChildProcess against real processes: output capture, exit notice, sure teardown, death signal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from swapgate.proxy.lifecycle.child import ChildProcess, group_has_live_members, split_command
from swapgate.proxy.lifecycle.wardenlink import WARDEN
from tests.support.procs import (
    REPO_ROOT,
    children_of,
    fake_upstream_argv,
    free_port,
    kill_group,
    pids_alive,
    spawn,
    wait_until,
    wait_until_async,
)

T = TypeVar("T")
PYTHONPATH = {"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one async test body on a fresh event loop."""
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def spawned(
    argv: Sequence[str], env: dict[str, str] | None = None
) -> AsyncIterator[tuple[ChildProcess, list[str]]]:
    """A ChildProcess and the list its output lines land in; its group is SIGKILLed after."""
    lines: list[str] = []
    child = await ChildProcess.spawn(argv, env or {}, lines.append)
    try:
        yield child, lines
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        await asyncio.wait_for(child.exited, 10)


def group_pids(child: ChildProcess) -> list[int]:
    """The child and all its descendants."""
    return [child.pid, *children_of(child.pid, recursive=True)]


# ---- split_command ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("llama-server --port ${PORT}", ["llama-server", "--port", "${PORT}"]),
        ("", []),
        ("# only a comment", []),
        (
            "bin --prompt \"hello world\" --x 'a b' --empty ''",
            ["bin", "--prompt", "hello world", "--x", "a b", "--empty", ""],
        ),
        (
            "bin \\\n  --model /m.gguf \\\n  --ctx 4096",
            ["bin", "--model", "/m.gguf", "--ctx", "4096"],
        ),
        ("bin \\   \n--a", ["bin", "--a"]),  # spaces after the backslash
        ("bin \\\r\n--a\r\n--b", ["bin", "--a", "--b"]),  # CRLF files
        (
            "# leading comment\nbin --a \\\n  # commented-out flag\n  --b\n    #indented",
            ["bin", "--a", "--b"],
        ),
        ("bin --grammar '#not-a-comment'", ["bin", "--grammar", "#not-a-comment"]),
        ('bin "--a=x y"\n--b', ["bin", "--a=x y", "--b"]),
    ],
)
def test_split_command(text: str, argv: list[str]) -> None:
    """Comment lines go, continuations join, quotes group words as a POSIX shell would."""
    assert split_command(text) == argv


def test_split_command_unbalanced_quote_raises() -> None:
    """An unterminated quote is a ValueError (reported by the caller as a bad cmd)."""
    with pytest.raises(ValueError, match="quotation"):
        split_command('bin --prompt "oops')


# ---- spawn, output, exit ------------------------------------------------------------------------


@pytest.mark.integration
def test_spawn_captures_merged_output_lines_with_env() -> None:
    """stdout and stderr arrive line by line (CR stripped, last partial line kept), env is added."""
    script = 'echo "$SWAPGATE_T"; echo err >&2; printf "crlf\\r\\nlast-no-newline"'

    async def body() -> None:
        async with spawned(["sh", "-c", script], {"SWAPGATE_T": "from-env"}) as (child, lines):
            assert await asyncio.wait_for(child.exited, 5.0) == 0
            assert await child.terminate(5.0) == 0  # exited already: returns its code
            assert lines == ["from-env", "err", "crlf", "last-no-newline"]

    run(body())


@pytest.mark.integration
def test_exited_resolves_promptly_on_own_exit() -> None:
    """`exited` resolves with the exit code as soon as the process ends by itself."""

    async def body() -> None:
        async with spawned(["sh", "-c", "read _ < /dev/null; exit 7"]) as (child, _):
            started = time.monotonic()
            assert await asyncio.wait_for(child.exited, 5.0) == 7
            assert time.monotonic() - started < 1.0
            assert child.returncode == 7
            assert await child.wait(0) == 7

    run(body())


@pytest.mark.integration
def test_wait_returns_none_while_running() -> None:
    """wait(within_s) gives None for a live process and leaves `exited` pending."""

    async def body() -> None:
        async with spawned(["sleep", "60"]) as (child, _):
            assert await child.wait(0.05) is None
            assert child.returncode is None
            assert not child.exited.done()

    run(body())


@pytest.mark.integration
def test_spawn_of_missing_program_raises_oserror() -> None:
    """A command that does not exist raises OSError at spawn (the caller reports it)."""

    async def body() -> None:
        with pytest.raises(FileNotFoundError):
            await ChildProcess.spawn(["/nonexistent/swapgate-bin"], {}, print)

    run(body())


# ---- terminate ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_terminate_sigterms_and_returns_code() -> None:
    """terminate() stops a cooperative child with SIGTERM well before the grace period ends."""

    async def body() -> None:
        async with spawned(["sleep", "60"]) as (child, _):
            started = time.monotonic()
            assert await child.terminate(10.0) == -signal.SIGTERM
            assert time.monotonic() - started < 5.0
            assert pids_alive([child.pid]) == []

    run(body())


@pytest.mark.integration
def test_terminate_reports_a_graceful_exit_code() -> None:
    """A child that handles SIGTERM and exits 0 gets 0 back from terminate()."""
    argv = fake_upstream_argv(free_port())

    async def body() -> None:
        async with spawned(argv, PYTHONPATH) as (child, lines):
            await wait_until_async(lambda: any("listening" in x for x in lines), message="listen")
            assert await child.terminate(10.0) == 0
            assert lines[-1] == "fake upstream stopping"

    run(body())


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["shell-trap", "fake-upstream"])
def test_terminate_sigkills_a_child_that_ignores_sigterm(kind: str) -> None:
    """A child that ignores SIGTERM is SIGKILLed once the grace period is over."""
    if kind == "shell-trap":
        argv = ["sh", "-c", 'trap "" TERM; echo ready; sleep 60 & wait']
    else:
        argv = [*fake_upstream_argv(free_port(), ignore_sigterm=True)]
    grace = 0.4

    async def body() -> None:
        async with spawned(argv, PYTHONPATH) as (child, lines):
            await wait_until_async(
                lambda: any(x == "ready" or "listening" in x for x in lines), message="ready"
            )
            pids = group_pids(child)
            started = time.monotonic()
            assert await child.terminate(grace) == -signal.SIGKILL
            assert time.monotonic() - started >= grace
            assert pids_alive(pids) == []

    run(body())


@pytest.mark.integration
@pytest.mark.parametrize(
    "script",
    [
        "sleep 60 & sleep 60 & wait",
        # The grandchild ignores SIGTERM and outlives the leader: the final SIGKILL gets it.
        '(trap "" TERM; exec sleep 60) & sleep 60 & wait',
    ],
)
def test_terminate_kills_grandchildren_in_the_group(script: str) -> None:
    """Every process in the child's group is gone after terminate()."""

    async def body() -> None:
        async with spawned(["sh", "-c", script]) as (child, _):
            pids = await wait_until_async(
                lambda: p if len(p := group_pids(child)) >= 3 else [],
                message="both grandchildren",
            )
            await child.terminate(5.0)
            await wait_until_async(lambda: not pids_alive(pids), timeout=2.0, message="group gone")

    run(body())


@pytest.mark.integration
def test_terminate_runs_stop_command_instead_of_sigterm(tmp_path: Path) -> None:
    """A cmdStop argv runs (and stops the child) and no SIGTERM is sent to the child."""
    marker = tmp_path / "stop-ran"
    script = (
        'trap "echo got-usr1; exit 0" USR1; trap "echo got-term; exit 0" TERM; '
        "echo ready; sleep 60 & wait"
    )

    async def body() -> None:
        async with spawned(["sh", "-c", script]) as (child, lines):
            await wait_until_async(lambda: "ready" in lines, message="traps installed")
            stop = ["sh", "-c", f"echo {child.pid} > {marker}; kill -USR1 {child.pid}"]
            started = time.monotonic()
            assert await child.terminate(10.0, stop) == 0
            assert time.monotonic() - started < 5.0
            assert marker.read_text().strip() == str(child.pid)
            assert "got-usr1" in lines
            assert "got-term" not in lines

    run(body())


@pytest.mark.integration
def test_terminate_kills_after_grace_when_stop_command_does_nothing() -> None:
    """A cmdStop that leaves the child running is followed by SIGKILL after the grace period."""

    async def body() -> None:
        async with spawned(["sleep", "60"]) as (child, _):
            assert await child.terminate(0.3, ["true"]) == -signal.SIGKILL
            assert pids_alive([child.pid]) == []

    run(body())


@pytest.mark.integration
def test_terminate_survives_caller_cancellation() -> None:
    """Cancelling the caller of terminate() does not abandon the teardown (it is shielded)."""

    async def body() -> None:
        argv = ["sh", "-c", 'trap "" TERM; echo ready; sleep 60 & wait']
        async with spawned(argv) as (child, lines):
            await wait_until_async(lambda: "ready" in lines, message="ready")
            pids = group_pids(child)
            caller = asyncio.create_task(child.terminate(0.3))
            await asyncio.sleep(0)  # let terminate() send SIGTERM
            caller.cancel()
            assert await asyncio.wait_for(child.exited, 5.0) == -signal.SIGKILL
            await wait_until_async(lambda: not pids_alive(pids), timeout=2.0, message="group gone")

    run(body())


# ---- cmdStop: env, output, one bound for the whole stop ---------------------------------------


@pytest.mark.integration
def test_stop_command_gets_model_env_and_its_output_reaches_on_line() -> None:
    """cmdStop runs with the model's env added, and its stdout and stderr land in on_line."""
    assert "SWAPGATE_STOP_T" not in os.environ
    stop_script = 'echo "stop sees $SWAPGATE_STOP_T"; echo stop-err >&2; kill "$0"'

    async def body() -> None:
        async with spawned(["sleep", "60"]) as (child, lines):
            stop = ["sh", "-c", stop_script, str(child.pid)]
            code = await child.terminate(5.0, stop, {"SWAPGATE_STOP_T": "model-env"})
            assert code == -signal.SIGTERM
            assert "stop sees model-env" in lines
            assert "stop-err" in lines

    run(body())


TRAP_TERM = 'trap "" TERM; echo ready; sleep 60 & wait'


@pytest.mark.integration
@pytest.mark.parametrize(
    ("child_script", "stop_hangs"),
    [
        pytest.param("echo ready; exec sleep 60", True, id="cmdStop-hangs"),
        pytest.param(TRAP_TERM, False, id="child-ignores-sigterm"),
        pytest.param(TRAP_TERM, True, id="both"),
    ],
)
def test_terminate_ends_within_grace_plus_one_second(
    tmp_path: Path, child_script: str, stop_hangs: bool
) -> None:
    """grace_s bounds cmdStop and the child's exit together: SIGKILL, all gone, by grace + 1 s."""
    grace = 1.5  # long enough that a doubled grace (3 s) breaks the bound (2.5 s)
    stop_pid_file = tmp_path / "stop.pid"
    # `exec` so the pid written is the sleeping process itself, which must be gone afterwards.
    stop = ["sh", "-c", f'trap "" TERM; echo $$ > {stop_pid_file}; exec sleep 30']

    async def body() -> None:
        async with spawned(["sh", "-c", child_script]) as (child, lines):
            await wait_until_async(lambda: "ready" in lines, message="child ready")
            pids = group_pids(child)
            started = time.monotonic()
            code = await child.terminate(grace, stop if stop_hangs else None)
            elapsed = time.monotonic() - started
            assert code == -signal.SIGKILL
            assert grace <= elapsed < grace + 1.0
            assert pids_alive(pids) == []
            assert not group_has_live_members(child.pid)
            if stop_hangs:
                stop_pid = int(stop_pid_file.read_text())
                assert pids_alive([stop_pid]) == []
                assert not group_has_live_members(stop_pid)

    run(body())


@pytest.mark.integration
@pytest.mark.parametrize(
    "stop_argv", [["/nonexistent/swapgate-stop"], ["kill\0"]], ids=["missing", "nul-byte"]
)
def test_stop_command_that_cannot_start_falls_back_to_sigterm(stop_argv: list[str]) -> None:
    """A cmdStop that cannot be run does not stall the stop: the group gets SIGTERM at once."""

    async def body() -> None:
        async with spawned(["sleep", "60"]) as (child, _):
            started = time.monotonic()
            assert await child.terminate(10.0, stop_argv) == -signal.SIGTERM
            assert time.monotonic() - started < 5.0

    run(body())


@pytest.mark.integration
def test_concurrent_terminate_calls_share_one_teardown() -> None:
    """A second terminate() joins the first one and gets the same exit code."""

    async def body() -> None:
        async with spawned(["sleep", "60"]) as (child, _):
            first, second = await asyncio.gather(child.terminate(5.0), child.terminate(0.0))
            assert first == second == -signal.SIGTERM

    run(body())


# ---- zombies in the group -----------------------------------------------------------------------

# Runs as a subreaper, as swapgate does when it is PID 1 in a container: the wrapper's
# background sleep is reparented to it when the leader dies and stays a zombie in the child's
# group, because nothing reaps it. The old killpg(pgid, 0) check waited 2 s on such a zombie.
SUBREAPER = textwrap.dedent(
    """
    import asyncio, ctypes, os, time
    from swapgate.proxy.lifecycle.child import ChildProcess

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    def zombies(pgid):
        found = 0
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                raw = open(f"/proc/{entry}/stat", "rb").read()
            except OSError:
                continue
            state, _, pgrp = raw[raw.rindex(b")") + 2 :].split()[:3]
            found += state == b"Z" and int(pgrp) == pgid
        return found

    async def main():
        lines = []
        script = "sleep 30 & echo ready; exec sleep 30"
        child = await ChildProcess.spawn(["sh", "-c", script], {}, lines.append)
        deadline = time.monotonic() + 10
        while "ready" not in lines and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        code = await child.terminate(5.0)
        elapsed = time.monotonic() - started
        print(code, elapsed, zombies(child.pid), flush=True)

    asyncio.run(main())
    while True:  # reap the zombies now, so none outlives this test
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    """
)


@pytest.mark.integration
def test_zombies_left_in_the_group_do_not_delay_the_stop() -> None:
    """A zombie that nobody reaps stays in the group; terminate() treats it as gone at once."""
    proc = spawn([sys.executable, "-c", SUBREAPER], stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=30)
        code, elapsed, zombies = out.decode().split()
        assert int(code) == -signal.SIGTERM
        assert int(zombies) >= 1  # the case is real: a zombie was still in the group
        assert float(elapsed) < 1.0  # well under the 2 s the killpg(pgid, 0) check took
    finally:
        kill_group(proc)


# ---- spawn that cannot start --------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("argv", "env"),
    [
        pytest.param(["sleep", "60\0"], {}, id="nul-in-argv"),
        pytest.param(["sleep", "60"], {"SWAPGATE_T": "x\0y"}, id="nul-in-env"),
        pytest.param(["sleep", "60"], {"A=B": "x"}, id="equals-in-env-name"),
        pytest.param([], {}, id="empty-argv"),
    ],
)
def test_spawn_of_unexecutable_argv_raises_valueerror_and_leaves_nothing(
    argv: list[str], env: dict[str, str]
) -> None:
    """argv or env that exec cannot take raise ValueError, with no process or descriptor left."""

    async def body() -> None:
        kids, fds = _our_children(), _open_fds()
        with pytest.raises(ValueError, match=r"null byte|environment variable|empty"):
            await ChildProcess.spawn(argv, env, print)
        assert _our_children() == kids
        assert _open_fds() == fds

    run(body())


# ---- death with the parent ----------------------------------------------------------------------

PARENT = textwrap.dedent(
    """
    import asyncio
    from swapgate.proxy.lifecycle.child import ChildProcess

    async def main():
        child = await ChildProcess.spawn(["sleep", "60"], {}, lambda line: None)
        print(child.pid, flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


@pytest.mark.integration
def test_child_dies_when_parent_is_sigkilled() -> None:
    """PR_SET_PDEATHSIG: SIGKILL of the spawning process takes its child down too."""
    parent = spawn([sys.executable, "-c", PARENT], stdout=subprocess.PIPE)
    child_pid = None
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert pids_alive([child_pid]) == [child_pid]
        parent.send_signal(signal.SIGKILL)  # the parent only: the child has its own group
        parent.wait(10)
        wait_until(lambda: not pids_alive([child_pid]), timeout=5.0, message="child gone")
    finally:
        kill_group(parent)
        if parent.stdout is not None:
            parent.stdout.close()
        if child_pid is not None and pids_alive([child_pid]):
            os.killpg(child_pid, signal.SIGKILL)


def _our_children() -> list[int]:
    """This process's children but its warden (one per process, for its whole life)."""
    return [pid for pid in children_of(os.getpid()) if pid != WARDEN.pid]
