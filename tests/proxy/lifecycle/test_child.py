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
from proxy.lifecycle.child import ChildProcess, split_command
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


# ---- death with the parent ----------------------------------------------------------------------

PARENT = textwrap.dedent(
    """
    import asyncio
    from proxy.lifecycle.child import ChildProcess

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
