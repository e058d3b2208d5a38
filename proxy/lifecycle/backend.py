"""Backend: the one owner of one upstream server's state, child process and in-flight leases.

Only `_move()` writes `_state`. Callers never branch on a state snapshot to act: they call
`ensure_ready()` / `ensure_stopped()` and the backend decides. Imports no web code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from proxy.config.model import ModelSpec
from proxy.errors import BackendStartFailed, ConcurrencyLimited, ShuttingDown
from proxy.events import StateChanged
from proxy.lifecycle.child import ChildProcess, split_command
from proxy.lifecycle.health import HealthTimeout, wait_healthy
from proxy.lifecycle.state import BackendState, check_transition

log = logging.getLogger("swapgate.backend")

_S = BackendState
_LOG_TAIL_LINES = 20


@dataclass(frozen=True, slots=True)
class BackendEnv:
    """What a backend borrows from its owner: clock, ports, output sink, health session."""

    health_session: aiohttp.ClientSession
    allocate_port: Callable[[int], int]  # preferred port -> a free port
    release_port: Callable[[int], None]
    on_output: Callable[[str, str], None]  # (model id, line)
    on_event: Callable[[StateChanged], None]
    health_timeout_s: float
    is_shutting_down: Callable[[], bool]
    clock: Callable[[], float] = time.monotonic


class Lease:
    """One in-flight request's hold on a ready backend; release exactly once (in `finally`)."""

    __slots__ = ("_backend", "_released", "generation", "url")

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._released = False
        self.url = backend.url
        self.generation = backend.generation

    @property
    def model(self) -> str:
        return self._backend.spec.id

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._backend._release()


class Backend:
    """One configured model's upstream server."""

    def __init__(self, spec: ModelSpec, env: BackendEnv) -> None:
        self.spec = spec
        self._env = env
        self._state = _S.STOPPED
        self.since = env.clock()
        self.last_used = self.since
        self.in_flight = 0
        self.generation = 0  # bumped per start: pooled connections of older ones are stale
        self.port: int | None = None
        self.url = spec.proxy
        self.cmd = spec.cmd
        self.last_error: BackendStartFailed | None = None
        self.failed_at = float("-inf")
        self._child: ChildProcess | None = None
        self._log_tail: list[str] = []
        self._start_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._cut_drain = asyncio.Event()  # set: stop waiting for in-flight requests
        self._cut_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        pid = self._child.pid if self._child else None
        return (
            f"<Backend {self.spec.id} {self._state.name} leases={self.in_flight} "
            f"pid={pid} port={self.port}>"
        )

    @property
    def state(self) -> BackendState:
        """For display and eviction choice only; act through ensure_ready/ensure_stopped."""
        return self._state

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def _move(self, new: BackendState, reason: str) -> None:
        old = self._state
        check_transition(self.spec.id, old, new)
        self._state = new
        self.since = self._env.clock()
        self._env.on_event(StateChanged(self.spec.id, old, new, reason, self.since))

    # ---- leases -------------------------------------------------------------------------

    def try_lease(self) -> Lease | None:
        """A lease if the backend is READY right now, else None. Synchronous on purpose."""
        if self._state is not _S.READY:
            return None
        limit = self.spec.concurrency_limit
        if limit and self.in_flight >= limit:
            msg = (
                f"model {self.spec.id!r} is already serving {limit} requests "
                "(concurrencyLimit); retry shortly"
            )
            raise ConcurrencyLimited(msg)
        self.in_flight += 1
        self._idle.clear()
        self.last_used = self._env.clock()
        return Lease(self)

    def _release(self) -> None:
        self.in_flight -= 1
        self.last_used = self._env.clock()
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no lease is held."""
        await self._idle.wait()

    def is_idle_for(self, ttl_s: float, now: float) -> bool:
        """True when READY, nothing in flight and unused for at least ttl_s (> 0)."""
        return (
            ttl_s > 0
            and self._state is _S.READY
            and self.in_flight == 0
            and now - self.last_used >= ttl_s
        )

    # ---- starting -----------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        """Return once READY, starting (or waiting for a stop, then starting) as needed.

        Raises BackendStartFailed if the start fails. Concurrent callers share one start.
        """
        while self._state is not _S.READY:
            if self._state is _S.STOPPING and self._stop_task is not None:
                await _finished(self._stop_task)
                continue
            if self._state in (_S.STOPPED, _S.FAILED):
                if self._env.is_shutting_down():
                    msg = f"swapgate is shutting down; model {self.spec.id!r} will not start"
                    raise ShuttingDown(msg)
                # no await between here and _move(): the start task is the single flight
                self._move(_S.STARTING, "requested")
                self._start_task = asyncio.create_task(self._start())
            if self._start_task is not None:
                await _finished(self._start_task)
            if self._state is _S.FAILED and self.last_error is not None:
                raise self.last_error

    async def _start(self) -> None:
        self.generation += 1
        self.last_error = None
        self._log_tail = []
        try:
            child = await self._spawn()
            self._child = child
            await self._await_health(child)
        except BackendStartFailed as exc:
            await self._fail_start(exc)
            return
        except (OSError, RuntimeError, aiohttp.ClientError) as exc:
            # Never leave the backend STARTING with no task behind it: waiters would spin.
            msg = f"model {self.spec.id!r} could not start: {exc}"
            await self._fail_start(BackendStartFailed(msg))
            return
        if self._state is _S.STARTING:  # an unload may have moved us to STOPPING meanwhile
            self._move(_S.READY, "healthy")
            child.exited.add_done_callback(self._on_exit_while_running)

    async def _spawn(self) -> ChildProcess:
        spec = self.spec
        try:
            self.port = None if spec.port is None else self._env.allocate_port(spec.port)
        except OSError as exc:
            msg = f"model {spec.id!r}: no free port to start on: {exc}"
            raise BackendStartFailed(msg) from exc
        self.cmd, self.url = spec.with_port(self.port)
        try:
            argv = split_command(self.cmd)
        except ValueError as exc:
            msg = f"model {spec.id!r}: cannot parse cmd: {exc}"
            raise BackendStartFailed(msg) from exc
        if not argv:
            msg = f"model {spec.id!r}: cmd is empty"
            raise BackendStartFailed(msg)
        try:
            return await ChildProcess.spawn(argv, dict(spec.env), self._on_line)
        except OSError as exc:
            msg = f"model {spec.id!r}: cannot run {argv[0]!r}: {exc.strerror or exc}"
            raise BackendStartFailed(msg + " — check models." + spec.id + ".cmd") from exc

    async def _await_health(self, child: ChildProcess) -> None:
        check = self.spec.check_endpoint
        url = None if check is None else self.url.rstrip("/") + "/" + check.lstrip("/")
        try:
            await wait_healthy(
                self._env.health_session, url, child.exited, self._env.health_timeout_s
            )
        except HealthTimeout as exc:
            msg = f"model {self.spec.id!r} did not become healthy: {exc}{self._tail_text()}"
            raise BackendStartFailed(msg) from exc
        if child.exited.done():
            msg = (
                f"model {self.spec.id!r} exited with code {child.exited.result()} "
                f"during startup{self._tail_text()}"
            )
            raise BackendStartFailed(msg)

    async def _fail_start(self, exc: BackendStartFailed) -> None:
        log.error("%s", exc.message)
        if self._child is not None:
            await self._child.terminate(self.spec.unload_timeout_s, None)
            self._child = None
        self._forget_port()
        self.last_error = exc
        self.failed_at = self._env.clock()
        if self._state is _S.STARTING:
            self._move(_S.FAILED, "start failed")

    def _tail_text(self) -> str:
        if not self._log_tail:
            return "; no output"
        return "; last output:\n" + "\n".join(self._log_tail)

    def _on_line(self, line: str) -> None:
        self._log_tail.append(line)
        if len(self._log_tail) > _LOG_TAIL_LINES:
            del self._log_tail[0]
        self._env.on_output(self.spec.id, line)

    def _on_exit_while_running(self, exited: asyncio.Future[int]) -> None:
        # Runs as a callback: no await, so the READY check and the move are one step.
        if self._state is _S.READY and self._child is not None and self._child.exited is exited:
            log.warning("model %s exited on its own with code %s", self.spec.id, exited.result())
            self._child = None
            self._forget_port()
            self._move(_S.FAILED, f"exited with code {exited.result()}")

    # ---- stopping -----------------------------------------------------------------------

    async def ensure_stopped(self, drain_timeout_s: float | None, reason: str) -> None:
        """Return once STOPPED. In-flight requests get up to `drain_timeout_s` (None: no limit)."""
        if self._state is _S.FAILED:
            self._move(_S.STOPPED, reason)
            return
        if self._state in (_S.READY, _S.STARTING):
            # no await between here and _move(): new leases are refused from this point on
            self._move(_S.STOPPING, reason)
            self._stop_task = asyncio.create_task(self._stop(drain_timeout_s))
        if self._stop_task is not None and self._state is _S.STOPPING:
            if drain_timeout_s is not None and self._cut_timer is None:
                # A drain already under way (swap, unload, TTL) may have no limit; ours wins.
                loop = asyncio.get_running_loop()
                self._cut_timer = loop.call_later(drain_timeout_s, self._cut_drain.set)
            await _finished(self._stop_task)

    def mark_stopping(self, reason: str) -> bool:
        """Refuse new leases now (READY -> STOPPING) without waiting; True if it moved."""
        if self._state is not _S.READY:
            return False
        self._move(_S.STOPPING, reason)
        self._stop_task = asyncio.create_task(self._stop(None))
        return True

    async def _stop(self, drain_timeout_s: float | None) -> None:
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._start_task
        self._cut_drain.clear()
        drained = asyncio.ensure_future(self._idle.wait())
        cut = asyncio.ensure_future(self._cut_drain.wait())
        await asyncio.wait(
            {drained, cut}, timeout=drain_timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        drained.cancel()
        cut.cancel()
        if self._cut_timer is not None:  # it belongs to this stop only
            self._cut_timer.cancel()
            self._cut_timer = None
        child, self._child = self._child, None
        if child is not None:
            stop_argv = self._stop_argv(child.pid)
            code = await child.terminate(self.spec.unload_timeout_s, stop_argv)
            log.info("model %s stopped (exit code %s)", self.spec.id, code)
        self._forget_port()
        self._move(_S.STOPPED, "stopped")

    def _stop_argv(self, pid: int) -> list[str] | None:
        if not self.spec.cmd_stop:
            return None
        text = self.spec.cmd_stop.replace("${PID}", str(pid))
        if self.port is not None:
            text = text.replace("${PORT}", str(self.port))
        try:
            return split_command(text) or None
        except ValueError:
            log.warning("model %s: cannot parse cmdStop; sending SIGTERM", self.spec.id)
            return None

    def _forget_port(self) -> None:
        if self.port is not None:
            self._env.release_port(self.port)
            self.port = None

    def kill_now(self) -> None:
        """Last-resort synchronous kill for exit paths that cannot await."""
        if self._child is not None:
            self._child.kill_now()


async def _finished(task: asyncio.Task[None]) -> None:
    """Wait for a task the backend owns without inheriting its outcome or cancelling it.

    Waiters re-read the state afterwards; a cancelled start (unload during startup) must not
    surface as the waiting request's own cancellation.
    """
    await asyncio.wait({task})
