"""Backend over real fake-upstream children: start, single flight, crash notice, failures, stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from swapgate.proxy.config.model import ModelSpec
from swapgate.proxy.errors import BackendStartFailed, ConcurrencyLimited
from swapgate.proxy.events import Cause, StateChanged
from swapgate.proxy.lifecycle.backend import Backend
from swapgate.proxy.lifecycle.env import BackendEnv
from swapgate.proxy.lifecycle.state import BackendState
from swapgate.proxy.lifecycle.wardenlink import WARDEN
from tests.support.procs import children_of, http_json, pids_alive
from tests.support.procs import wait_until_async as wait_for_condition
from tests.support.specs import fake_spec as spec
from tests.support.specs import run

pytestmark = pytest.mark.integration

_S = BackendState


class Harness:
    """What a pool would lend a backend, with the events and output kept for assertions."""

    def __init__(self, session: aiohttp.ClientSession, health_timeout_s: float) -> None:
        self.events: list[StateChanged] = []
        self.idle: list[str] = []
        self.output: list[str] = []
        self.backends: list[Backend] = []
        self.env = BackendEnv(
            health_session=session,
            allocate_port=lambda model, port: port,
            release_port=lambda model: None,
            on_output=lambda model, line: self.output.append(line),
            on_event=self.events.append,
            health_timeout_s=health_timeout_s,
            on_idle=self.idle.append,
        )

    def backend(self, model: ModelSpec) -> Backend:
        made = Backend(model, self.env)
        self.backends.append(made)
        return made

    def moves(self) -> list[tuple[BackendState, BackendState]]:
        return [(e.old, e.new) for e in self.events]

    def starts(self) -> int:
        """How many processes reached `listening` (one line per spawned fake)."""
        return sum("listening on" in line for line in self.output)


@contextlib.asynccontextmanager
async def harness(health_timeout_s: float = 20.0) -> AsyncIterator[Harness]:
    """A Harness whose backends are all stopped, and whose children are gone, afterwards."""
    before = set(_our_children())
    async with aiohttp.ClientSession() as session:
        h = Harness(session, health_timeout_s)
        try:
            yield h
        finally:
            for backend in h.backends:
                await backend.ensure_stopped(Cause.SHUTDOWN, 1.0)
            leaked = pids_alive(sorted(set(_our_children()) - before))
            for pid in leaked:
                os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    await asyncio.to_thread(os.waitpid, pid, 0)
            assert leaked == [], f"children left running: {leaked}"


async def get(url: str) -> tuple[int, Any]:
    """GET a URL off the event loop; (status, JSON body)."""
    status, _, body = await asyncio.to_thread(http_json, "GET", url)
    return status, body


def pid_of(backend: Backend) -> int | None:
    """The backend's child pid, read fresh (not narrowed by an earlier assert)."""
    return backend.pid


async def gone(pid: int | None) -> None:
    """Wait (bounded) until `pid` no longer runs."""
    assert pid is not None
    await wait_for_condition(lambda: not pids_alive([pid]), 5.0, message=f"pid {pid} gone")


def test_ensure_ready_starts_and_stop_stops() -> None:
    """STOPPED -> STARTING -> READY with a live, answering server; ensure_stopped ends it."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(spec("a"))
            assert backend.state is _S.STOPPED
            await backend.ensure_ready()
            assert h.moves() == [(_S.STOPPED, _S.STARTING), (_S.STARTING, _S.READY)]
            pid = backend.pid
            assert pid is not None
            assert pids_alive([pid]) == [pid]
            assert backend.url == f"http://127.0.0.1:{backend.port}"
            status, models = await get(backend.url + "/v1/models")
            assert (status, models["data"][0]["id"]) == (200, "a")
            assert repr(backend) == f"<Backend a READY leases=0 pid={pid} port={backend.port}>"
            await backend.ensure_stopped(Cause.UNLOAD, None)
            assert h.moves()[2:] == [(_S.READY, _S.STOPPING), (_S.STOPPING, _S.STOPPED)]
            assert backend.pid is None
            await gone(pid)

    run(body())


def test_concurrent_ensure_ready_share_one_start() -> None:
    """Five concurrent callers see one STARTING move and one spawned process."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(spec("a", "--startup-delay 0.3"))
            await asyncio.gather(*(backend.ensure_ready() for _ in range(5)))
            assert h.moves() == [(_S.STOPPED, _S.STARTING), (_S.STARTING, _S.READY)]
            assert h.starts() == 1
            assert backend.generation == 1

    run(body())


def test_crash_of_ready_child_is_noticed_and_next_call_restarts() -> None:
    """A READY child killed from outside moves the backend to FAILED at once; a retry restarts."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(spec("a"))
            await backend.ensure_ready()
            first = backend.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await wait_for_condition(lambda: backend.state is _S.FAILED, 0.5, message="FAILED")
            assert h.events[-1].cause is Cause.EXITED
            assert h.events[-1].detail.endswith(f"exited on its own with code {-signal.SIGKILL}")
            assert pid_of(backend) is None
            await backend.ensure_ready()
            assert pid_of(backend) not in (None, first)
            assert backend.generation == 2
            assert (await get(backend.url + "/health"))[0] == 200

    run(body())


def test_start_failure_carries_exit_code_and_last_output() -> None:
    """A child that exits during startup fails fast with its code and its last output line."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(spec("a", "--exit-on-start 3"))
            started = time.monotonic()
            with pytest.raises(BackendStartFailed) as caught:
                await backend.ensure_ready()
            assert time.monotonic() - started < 10.0  # not the 20 s health timeout
            message = caught.value.message
            assert "'a' exited with code 3 during startup" in message
            assert message.endswith("fatal: cannot load model (simulated)")
            assert caught.value.status == 503
            assert backend.state is _S.FAILED
            # the failure is kept as a record, never as the raised exception object
            assert backend.last_failure is not None
            assert backend.last_failure.message == message
            assert backend.backoff.failures == 1
            assert backend.pid is None

    run(body())


def test_health_timeout_fails_start_and_kills_child() -> None:
    """A server that never turns healthy fails after the health timeout and is killed."""

    async def body() -> None:
        async with harness(health_timeout_s=0.5) as h:
            backend = h.backend(spec("a", "--fail-health"))
            starting = asyncio.create_task(backend.ensure_ready())
            pid = await wait_for_condition(lambda: backend.pid, message="spawned")
            with pytest.raises(BackendStartFailed, match="did not become healthy") as caught:
                await starting
            assert "within 0.5s" in caught.value.message
            assert backend.state is _S.FAILED
            await gone(pid)

    run(body())


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("/nonexistent/llama-server --port 1", "cannot run '/nonexistent/llama-server'"),
        ('llama-server --prompt "unterminated', "cannot parse cmd"),
        ("# just a comment", "cmd is empty"),
    ],
)
def test_unrunnable_command_fails_start(cmd: str, expected: str) -> None:
    """A bad cmd becomes BackendStartFailed naming the problem; the backend is FAILED."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(ModelSpec(id="a", cmd=cmd, proxy="http://127.0.0.1:1"))
            with pytest.raises(BackendStartFailed, match=expected):
                await backend.ensure_ready()
            assert backend.state is _S.FAILED

    run(body())


def test_leases_count_and_concurrency_limit() -> None:
    """Leases exist only when READY, count in-flight work, release once, honour the limit."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(spec("a", concurrency_limit=2))
            assert backend.try_lease() is None
            await backend.ensure_ready()
            first, second = backend.try_lease(), backend.try_lease()
            assert first is not None
            assert second is not None
            assert backend.in_flight == 2
            with pytest.raises(ConcurrencyLimited, match="concurrencyLimit"):
                backend.try_lease()
            first.release()
            first.release()  # a second release is a no-op
            assert backend.in_flight == 1
            third = backend.try_lease()
            assert third is not None
            second.release()
            third.release()
            assert backend.in_flight == 0
            await asyncio.wait_for(backend.wait_idle(), 1.0)

    run(body())


def test_stop_drains_leases_then_stops() -> None:
    """ensure_stopped refuses new leases at once and stops the child only after the last one."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(spec("a"))
            await backend.ensure_ready()
            pid = backend.pid
            lease = backend.try_lease()
            assert lease is not None
            stopping = asyncio.create_task(backend.ensure_stopped(Cause.UNLOAD, None))
            await wait_for_condition(lambda: backend.state is _S.STOPPING, message="STOPPING")
            assert backend.try_lease() is None
            done, _ = await asyncio.wait({stopping}, timeout=0.3)
            assert not done
            assert pid is not None
            assert pids_alive([pid]) == [pid]
            lease.release()
            await asyncio.wait_for(stopping, 5.0)
            assert backend.state is _S.STOPPED
            await gone(pid)

    run(body())


def test_drain_timeout_cuts_a_held_lease() -> None:
    """With a drain timeout, a lease that is never released does not block the stop."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(spec("a"))
            await backend.ensure_ready()
            pid = backend.pid
            assert pid is not None
            lease = backend.try_lease()
            assert lease is not None
            await asyncio.wait_for(backend.ensure_stopped(Cause.SHUTDOWN, 0.2), 5.0)
            assert backend.state is _S.STOPPED
            await gone(pid)
            lease.release()

    run(body())


def test_cmd_stop_replaces_sigterm() -> None:
    """cmdStop (with ${PID}) stops a child that ignores SIGTERM, without waiting for SIGKILL."""

    async def body() -> None:
        async with harness() as h:
            model = spec("a", "--ignore-sigterm", cmd_stop="kill -INT ${PID}", unload_timeout_s=30)
            backend = h.backend(model)
            await backend.ensure_ready()
            pid = backend.pid
            assert pid is not None
            started = time.monotonic()
            await backend.ensure_stopped(Cause.UNLOAD, None)
            assert time.monotonic() - started < 10.0  # SIGTERM would wait out the 30 s grace
            assert h.output[-1] == "fake upstream stopping"  # SIGINT's graceful path
            await gone(pid)

    run(body())


def test_unload_while_health_check_runs_kills_the_child() -> None:
    """An unload during the health wait (STARTING -> STOPPING) stops the spawned child."""

    async def body() -> None:
        async with harness() as h:
            backend = h.backend(spec("a", "--startup-delay 30"))
            waiter = asyncio.create_task(backend.ensure_ready())
            pid = await wait_for_condition(lambda: backend.pid, message="spawned")
            waiter.cancel()  # the request went away; the start task is the backend's own
            await backend.ensure_stopped(Cause.UNLOAD, None)
            assert backend.state is _S.STOPPED
            assert h.moves()[-2:] == [(_S.STARTING, _S.STOPPING), (_S.STOPPING, _S.STOPPED)]
            await gone(pid)

    run(body())


def test_unload_right_after_spawn_leaves_no_child() -> None:
    """An unload that lands while spawn() is still wiring the output pipe kills that child too."""

    async def body() -> None:
        async with harness() as h:
            before = set(_our_children())
            backend = h.backend(spec("a"))
            waiter = asyncio.create_task(backend.ensure_ready())
            await asyncio.sleep(0)  # the waiter moves to STARTING and creates the start task
            await asyncio.sleep(0)  # the start task forks the child, then awaits the pipe
            spawned = set(_our_children()) - before
            assert len(spawned) == 1
            waiter.cancel()
            await backend.ensure_stopped(Cause.UNLOAD, None)
            assert backend.state is _S.STOPPED
            await wait_for_condition(
                lambda: not pids_alive(sorted(spawned)), 2.0, message="spawned child gone"
            )

    run(body())


def _our_children() -> list[int]:
    """This process's children but its warden (one per process, for its whole life)."""
    return [pid for pid in children_of(os.getpid()) if pid != WARDEN.pid]
