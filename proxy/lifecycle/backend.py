"""Backend: the one owner of one upstream server's state, child process and in-flight leases.

Only `_move()` writes `_state`. Callers never branch on a state snapshot to act: they call
`begin_start()` / `begin_stop()` (synchronous moves that hand back the task doing the slow
part) or their awaiting forms `ensure_ready()` / `ensure_stopped()`, and the backend decides.
Every start ends READY or FAILED and every stop ends STOPPED, whatever is raised.
Imports no web code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from swapgate.proxy.config.model import ModelSpec
from swapgate.proxy.errors import BackendStartFailed, ConcurrencyLimited, Unavailable
from swapgate.proxy.events import Cause, StateChanged
from swapgate.proxy.lifecycle.backoff import Backoff, StartFailure
from swapgate.proxy.lifecycle.child import ChildProcess
from swapgate.proxy.lifecycle.commands import (
    external_down,
    health_url,
    port_taken,
    start_argv,
    stop_argv,
    tail_text,
)
from swapgate.proxy.lifecycle.env import BackendEnv
from swapgate.proxy.lifecycle.health import HealthTimeout, probe_reachable, wait_healthy
from swapgate.proxy.lifecycle.lease import Lease
from swapgate.proxy.lifecycle.readiness import ListenerGuard
from swapgate.proxy.lifecycle.state import BackendState, check_transition

log = logging.getLogger("swapgate.backend")

_S = BackendState
_LOG_TAIL_LINES = 20


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
        self.backoff = Backoff()
        self._child: ChildProcess | None = None
        self._guard: ListenerGuard | None = None
        self._log_tail: list[str] = []
        self._start_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._cut_drain = asyncio.Event()  # set: stop waiting for in-flight requests
        self._cut_timer: asyncio.TimerHandle | None = None
        self._next: tuple[ModelSpec, BackendEnv] | None = None  # taken once stopped (reload)

    def __repr__(self) -> str:
        return (
            f"<Backend {self.spec.id} {self._state.name} leases={self.in_flight} "
            f"pid={self.pid} port={self.port}>"
        )

    @property
    def state(self) -> BackendState:
        """For display and eviction choice only; act through begin_start/begin_stop."""
        return self._state

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def last_failure(self) -> StartFailure | None:
        return self.backoff.last

    def _move(self, new: BackendState, cause: Cause, detail: str = "") -> None:
        old = self._state
        check_transition(self.spec.id, old, new)
        self._state = new
        self.since = self._env.clock()
        self._env.on_event(StateChanged(self.spec.id, old, new, cause, self.since, detail))

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
        return Lease(self.spec.id, self.url, self.generation, self._release)

    def _release(self) -> None:
        self.in_flight -= 1
        self.last_used = self._env.clock()
        if self.in_flight == 0:
            self._idle.set()
            self._env.on_idle(self.spec.id)

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

    def begin_start(self) -> asyncio.Task[None] | None:
        """STOPPED/FAILED -> STARTING with the start task; the running start if STARTING;
        None when READY or STOPPING (a stop in motion must finish first)."""
        if self._state in (_S.STOPPED, _S.FAILED):
            # no await between here and _move(): the start task is the single flight
            self._move(_S.STARTING, Cause.REQUESTED)
            self._start_task = asyncio.create_task(self._start())
            return self._start_task
        if self._state is _S.STARTING:
            return self._start_task
        return None

    async def ensure_ready(self) -> None:
        """Return once READY: wait for a stop in motion, then start (or join the start).

        Raises BackendStartFailed (a fresh exception from the failure record) if the start
        fails, or Unavailable if the model was stopped while starting.
        """
        if self._state is _S.STOPPING and self._stop_task is not None:
            await _finished(self._stop_task)
        task = self.begin_start()
        if task is not None:
            await _finished(task)
        if self._state is _S.READY:
            return
        failure = self.backoff.last
        if self._state is _S.FAILED and failure is not None:
            raise BackendStartFailed(failure.message)
        msg = f"model {self.spec.id!r} was stopped while starting ({self._state}); retry"
        raise Unavailable(msg)

    async def _start(self) -> None:
        self.generation += 1
        self._log_tail = []
        try:
            child = await self._launch()
        except asyncio.CancelledError:
            raise  # a stop cancelled us: the stop task owns the cleanup
        except BackendStartFailed as exc:
            await self._fail_start(exc.message)
        except Exception as exc:  # every start must settle, whatever the cause
            log.exception("model %s: unexpected error while starting", self.spec.id)
            await self._fail_start(f"model {self.spec.id!r} could not start: {exc!r}")
        else:
            if self._state is _S.STARTING:  # a stop may have moved us to STOPPING meanwhile
                self._move(_S.READY, Cause.HEALTHY)
                if child is not None:
                    child.exited.add_done_callback(self._on_exit_while_running)

    async def _launch(self) -> ChildProcess | None:
        """Spawn the server and wait until it is healthy; an external one is only probed."""
        if self.spec.external:
            url = self._health_url()
            if url is not None and not await probe_reachable(self._env.health_session, url):
                raise BackendStartFailed(external_down(self.spec.id, url))
            return None
        child = await self._spawn()
        self._child = child
        await self._await_health(child)
        return child

    def _health_url(self) -> str | None:
        return health_url(self.url, self.spec.check_endpoint)

    async def _spawn(self) -> ChildProcess:
        spec = self.spec
        try:
            self.port = None if spec.port is None else self._env.allocate_port(spec.id, spec.port)
        except OSError as exc:
            msg = f"model {spec.id!r}: no free port to start on: {exc}"
            raise BackendStartFailed(msg) from exc
        self.cmd, self.url = spec.with_port(self.port)
        argv = start_argv(spec.id, self.cmd)
        self._guard = ListenerGuard(self.url)
        try:
            return await ChildProcess.spawn(argv, dict(spec.env), self._on_line)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            msg = f"model {spec.id!r}: cannot run {argv[0]!r}: {reason}"
            raise BackendStartFailed(msg + " — check models." + spec.id + ".cmd") from exc

    async def _await_health(self, child: ChildProcess) -> None:
        url = self._health_url()
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
        self._check_listener(child)

    def _check_listener(self, child: ChildProcess) -> None:
        """Healthy counts only if the listener is our child's, where Linux can tell."""
        if self.spec.check_endpoint is None or self._guard is None:
            return
        port = self._guard.foreign_port(child.pid)
        if port is not None:
            raise BackendStartFailed(port_taken(self.spec.id, port) + self._tail_text())

    async def _fail_start(self, message: str) -> None:
        log.error("%s", message)
        try:
            if self._child is not None:
                await self._child.terminate(self.spec.unload_timeout_s)
        finally:
            self._child = None
            self._forget_port()
            self.backoff.failed(StartFailure(message, self._env.clock()))
            if self._state is _S.STARTING:
                self._move(_S.FAILED, Cause.START_FAILED, message)

    def _tail_text(self) -> str:
        return tail_text(self._log_tail)

    def _on_line(self, line: str) -> None:
        self._log_tail.append(line)
        if len(self._log_tail) > _LOG_TAIL_LINES:
            del self._log_tail[0]
        self._env.on_output(self.spec.id, line)

    def _on_exit_while_running(self, exited: asyncio.Future[int]) -> None:
        # Runs as a callback: no await, so the READY check and the move are one step.
        if self._state is _S.READY and self._child is not None and self._child.exited is exited:
            code = exited.result()
            log.warning("model %s exited on its own with code %s", self.spec.id, code)
            message = f"model {self.spec.id!r} exited on its own with code {code}"
            self.backoff.failed(StartFailure(message, self._env.clock()), ready_since=self.since)
            self._child = None
            self._forget_port()
            self._move(_S.FAILED, Cause.EXITED, message)

    # ---- stopping -----------------------------------------------------------------------

    def begin_stop(self, cause: Cause, drain_s: float | None) -> asyncio.Task[None] | None:
        """Refuse new leases now and stop; the stop task, or None when already stopped.

        In-flight requests get up to `drain_s` seconds (None: no limit). A drain already
        under way keeps its task; a bound given now tightens it.
        """
        if self._state is _S.FAILED:
            self.backoff.reset()  # an operator's unload clears the back-off
            self._move(_S.STOPPED, cause)
            return None
        if self._state in (_S.READY, _S.STARTING):
            # no await between here and _move(): new leases are refused from this point on
            self._move(_S.STOPPING, cause)
            self._cut_drain.clear()
            self._stop_task = asyncio.create_task(self._stop())
        if self._state is not _S.STOPPING:
            return None
        if drain_s is not None:
            self._bound_drain(drain_s)
        return self._stop_task

    def _bound_drain(self, drain_s: float) -> None:
        if drain_s <= 0:
            self._cut_drain.set()
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + drain_s
        if self._cut_timer is None or self._cut_timer.when() > due:
            if self._cut_timer is not None:
                self._cut_timer.cancel()
            self._cut_timer = loop.call_at(due, self._cut_drain.set)

    async def ensure_stopped(self, cause: Cause, drain_s: float | None) -> None:
        """Return once STOPPED (or FAILED by an exit during the stop)."""
        task = self.begin_stop(cause, drain_s)
        if task is not None:
            await _finished(task)

    async def _stop(self) -> None:
        try:
            await self._cancel_start()
            await self._drain()
            child, self._child = self._child, None
            if child is not None:
                code = await child.terminate(
                    self.spec.unload_timeout_s, self._stop_argv(child.pid), dict(self.spec.env)
                )
                log.info("model %s stopped (exit code %s)", self.spec.id, code)
        except Exception:  # every stop must settle, whatever the cause
            log.exception("model %s: unexpected error while stopping", self.spec.id)
        finally:
            if self._cut_timer is not None:
                self._cut_timer.cancel()
                self._cut_timer = None
            self._forget_port()
            self.backoff.reset()
            self._take_next()  # before STOPPED: whoever sees STOPPED starts the new settings
            self._move(_S.STOPPED, Cause.STOPPED)

    async def _cancel_start(self) -> None:
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._start_task

    async def _drain(self) -> None:
        drained = asyncio.ensure_future(self._idle.wait())
        cut = asyncio.ensure_future(self._cut_drain.wait())
        try:
            await asyncio.wait({drained, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
            cut.cancel()

    def _stop_argv(self, pid: int) -> list[str] | None:
        return stop_argv(self.spec.id, self.spec.cmd_stop, pid, self.port)

    def _forget_port(self) -> None:
        if self.port is not None:
            self._env.release_port(self.spec.id)
            self.port = None

    # ---- reloading ----------------------------------------------------------------------

    def refresh(self, spec: ModelSpec, env: BackendEnv) -> None:
        """A reload kept this model's server settings: take the live ones (limits, TTL,
        aliases, ...) now; process, port, generation and leases stay as they are."""
        self.spec = spec
        self._env = env

    def retire(
        self, spec: ModelSpec | None, env: BackendEnv, drain_s: float | None
    ) -> asyncio.Task[None] | None:
        """A reload changed this model (`spec`: its new settings) or removed it (None).
        New leases are refused from now on; in-flight requests get up to `drain_s` (None:
        no bound); then the server stops, and the next start uses `spec`."""
        self._next = None if spec is None else (spec, env)
        # no await between here and _move(): the stop refuses new leases at once
        task = self.begin_stop(Cause.RELOAD, drain_s)
        if task is None:  # nothing ran (or it was FAILED): the new settings apply now
            self._take_next()
        return task

    def _take_next(self) -> None:
        if self._next is None:
            return
        (self.spec, self._env), self._next = self._next, None
        self.url, self.cmd = self.spec.proxy, self.spec.cmd

    def kill_now(self) -> None:
        """Last-resort synchronous kill for exit paths that cannot await."""
        if self._child is not None:
            self._child.kill_now()


async def _finished(task: asyncio.Task[None]) -> None:
    """Wait for a task the backend owns without inheriting its outcome or cancelling it:
    a cancelled start (unload during startup) is not the waiting request's cancellation."""
    await asyncio.wait({task})
