"""BackendPool: the single owner of every backend. Nothing else starts or stops upstream
servers. Requests go through the `Scheduler` (queue, collation, fairness, policies); its
effects are carried out by `SwapRunner`; unloads, TTL expiry and shutdown act on backends
directly, so they never wait behind another model's swap. No lock is held across I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import aiohttp

from swapgate.proxy.config.diff import ConfigDelta
from swapgate.proxy.config.model import Config, RouterKind
from swapgate.proxy.errors import ConfigChanged, ModelNotFound, ShuttingDown
from swapgate.proxy.events import Cause, Event, EventBus, MemoryFigure, StateChanged
from swapgate.proxy.lifecycle.backend import Backend
from swapgate.proxy.lifecycle.env import BackendEnv
from swapgate.proxy.lifecycle.lease import Lease
from swapgate.proxy.lifecycle.memory import GpuMemory, MemoryBook
from swapgate.proxy.lifecycle.placement import policy_for, scheduler_settings
from swapgate.proxy.lifecycle.ports import PortBook
from swapgate.proxy.lifecycle.scheduler import QueueEntry, Scheduler, Waiter
from swapgate.proxy.lifecycle.state import BackendState
from swapgate.proxy.lifecycle.swaps import SwapRunner
from swapgate.proxy.lifecycle.ticket import Ticket

log = logging.getLogger("swapgate.pool")

_S = BackendState
_REAPER_INTERVAL_S = 0.25
_RESTART_DELAY_S = 1.0
_REMEASURE_AFTER_S = 5.0  # servers may allocate more after their health check passes
_DECISIONS = 3  # reloads in a row a waiting acquire() queues again for


class BackendPool:
    """Owns the backends of one config; every start and stop goes through here."""

    def __init__(
        self,
        config: Config,
        on_output: Callable[[str, str], None],
        gpu: GpuMemory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._on_output = on_output
        self._clock = clock
        self.events = EventBus()
        self.ports = PortBook()
        self.memory = MemoryBook(config.models, gpu)
        self._shutting_down = False
        self._health_session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.backends: dict[str, Backend] = {}
        self._env: BackendEnv | None = None  # set by start()
        self._runner = SwapRunner(config, self.backends, self.events, clock)
        self.scheduler = Scheduler(
            self._runner,
            policy_for(self._config, self.memory),
            scheduler_settings(self._config),
            clock,
        )
        self._runner.scheduler = self.scheduler
        self.events.on(self._on_event)

    async def start(self) -> None:
        """Create the backends (all stopped) and the TTL reaper. Call inside the event loop."""
        self._health_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True)  # probes must not pin threads
        )
        self._env = env = BackendEnv(
            health_session=self._health_session,
            allocate_port=self.ports.allocate,
            release_port=self.ports.release,
            on_output=self._on_output,
            on_event=self.events.publish,
            on_idle=self._on_idle,
            health_timeout_s=self._config.health_check_timeout_s,
            clock=self._clock,
        )
        self.backends.update({m: Backend(spec, env) for m, spec in self._config.models.items()})
        self._supervise("ttl reaper", self._reap_idle_forever)
        for model in (
            self.memory.unknown() if self._config.scheduling.router is RouterKind.FIT else []
        ):
            log.warning(
                "model %s: no vram figure and none can be estimated; counted as 0 MiB until measured",
                model,
            )

    @property
    def config(self) -> Config:
        return self._config

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def in_flight(self) -> int:
        return sum(backend.in_flight for backend in self.backends.values())

    # ---- the request path ---------------------------------------------------------------

    async def acquire(self, model_id: str) -> Lease:
        """A lease on a READY backend for `model_id`, waiting in the scheduler's queue if needed.

        Fast path: the backend is READY and takes leases -> a lease with no await at all.
        A reload while it waits queues it again by the same id (ModelNotFound if removed).
        """
        arrived: float | None = None
        for _ in range(_DECISIONS):
            ticket = self.enqueue(model_id, arrived)
            if isinstance(ticket, Lease):
                return ticket
            try:
                return await ticket.wait()
            except ConfigChanged as exc:
                arrived = exc.arrived
        msg = f"the config was reloaded {_DECISIONS} times while waiting for {model_id!r}; retry"
        raise ConfigChanged(msg)

    def enqueue(self, model_id: str, arrived: float | None = None) -> Lease | Ticket:
        """A lease now (fast path), or a ticket to wait on. Raises ModelNotFound, ShuttingDown.

        `arrived`: when a request decided again after a reload first queued; it keeps its
        place and its queueTimeout counts from then."""
        backend = self._backend(model_id)
        if self._shutting_down:
            msg = "swapgate is shutting down; retry against another instance or after restart"
            raise ShuttingDown(msg)
        lease = backend.try_lease()
        if lease is not None:
            return lease
        now = self._clock() if arrived is None else arrived
        timeout = self._config.queue_timeout_s(backend.spec)
        waiter = Waiter(model_id, now, now + timeout if timeout > 0 else None)
        future: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        self._runner.futures[waiter] = future
        self._decide(lambda: self.scheduler.request(waiter))
        return Ticket(waiter, future, self)

    def forget(self, ticket: Ticket) -> None:
        """The ticket's client left: it leaves the queue (no swap is started for it)."""
        self._runner.futures.pop(ticket.waiter, None)
        self._decide(lambda: self.scheduler.cancel(ticket.waiter))

    def describe_wait(self, waiter: Waiter) -> str:
        ahead = self.scheduler.ahead_of(waiter)
        backend = self.backends[waiter.model]
        if backend.state is _S.STARTING:
            return f"loading {waiter.model}… {self._clock() - backend.since:.1f}s"
        if ahead:
            return f"queued behind {ahead} request{'s' if ahead != 1 else ''}"
        return waiter.blocked or f"waiting for {waiter.model}"

    def _backend(self, model_id: str) -> Backend:
        backend = self.backends.get(model_id)
        if backend is None or model_id not in self._config.models:  # removed, still stopping
            known = ", ".join(sorted(self._config.models))
            msg = f"model {model_id!r} is not configured; known models: {known}"
            raise ModelNotFound(msg)
        return backend

    def upstream_failed(self, model_id: str) -> None:
        """A request could not reach an external model's server: probe it again before the
        next request (its state goes through STOPPED; there is no process to stop)."""
        backend = self.backends.get(model_id)
        if backend is not None and backend.spec.external and backend.state is _S.READY:
            log.warning("model %s: external server unreachable; it is probed again", model_id)
            backend.begin_stop(Cause.UNREACHABLE, 0.0)

    async def load(self, model_id: str) -> None:
        """Start `model_id` through the scheduler (policies apply) and return once READY."""
        (await self.acquire(model_id)).release()

    # ---- deciding -----------------------------------------------------------------------

    def _decide(self, event: Callable[[], None]) -> None:
        """Feed one event to the scheduler, then arm the timer for its next wake-up."""
        event()
        self._arm_timer()

    def _arm_timer(self) -> None:
        wake = self.scheduler.next_wakeup()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if wake is not None and not self._shutting_down:
            delay = max(0.0, wake - self._clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._decide(self.scheduler.timer)

    def _on_idle(self, _model: str) -> None:
        # On the request path (a last lease released): only waiters care that a model idles.
        if self.scheduler.waiting:
            self._decide(self.scheduler.changed)

    def _on_event(self, event: Event) -> None:
        if not isinstance(event, StateChanged):
            return
        detail = f": {event.detail.splitlines()[0]}" if event.detail else ""
        log.info(
            "model %s: %s -> %s (%s%s)", event.model, event.old, event.new, event.cause, detail
        )
        if event.new is _S.READY and self.memory.can_measure:
            self._spawn(self._measure(event.model))
        if event.new is _S.STOPPED and event.model not in self._config.models:
            # A model the reload removed has stopped; not here: callers may be iterating.
            asyncio.get_running_loop().call_soon(self._forget_removed, event.model)
        self._decide(self.scheduler.changed)

    # ---- reloading ----------------------------------------------------------------------

    def apply(self, config: Config, delta: ConfigDelta) -> tuple[str, ...]:
        """Serve `config` (checked, ports kept) from now on, changing only what `delta` names
        (see diff.py); every queued request is decided again. Returns the changed models
        that were running and are preloaded: the caller starts them again."""
        old, env = self._config, self._env
        assert env is not None, "apply() before start()"  # noqa: S101  # a programming error
        # One synchronous stretch, no await: no request sees half of the old config.
        env = self._env = replace(env, health_timeout_s=config.health_check_timeout_s)
        self._config = self._runner.config = config
        self.memory = self.memory.reloaded(config.models, delta.unchanged)
        busy = (_S.READY, _S.STARTING)
        restart = tuple(
            m for m in delta.changed if m in config.preload and self.backends[m].state in busy
        )
        for model in delta.unchanged:
            self.backends[model].refresh(config.models[model], env)
        for model in (*delta.changed, *delta.removed):
            backend = self.backends[model]
            drain_s = old.drain_timeout_s(backend.spec) or None
            backend.retire(config.models.get(model), env, drain_s)
        for model in delta.added:
            spec = config.models[model]
            stopping = self.backends.get(model)  # removed by an earlier reload, still stopping
            if stopping is None:
                self.backends[model] = Backend(spec, env)
            else:
                stopping.retire(spec, env, None)
        message = "the config was reloaded while this request waited"
        self._decide(
            lambda: self.scheduler.reload(
                policy_for(self._config, self.memory), scheduler_settings(self._config), message
            )
        )
        return restart

    def _forget_removed(self, model: str) -> None:
        backend = self.backends.get(model)
        if backend is not None and backend.state is _S.STOPPED and model not in self._config.models:
            del self.backends[model]

    # ---- unloading ----------------------------------------------------------------------

    async def unload(self, model_id: str | None = None) -> list[str]:
        """Stop one model (or all); returns what was stopped. Never waits behind a swap.

        In-flight requests get up to shutdownTimeout seconds to finish: an unload frees the
        GPU soon even while a long generation runs, without cutting short ones. Requests
        queued for an unloaded model are answered 503 model_unloaded.
        """
        targets = [self._backend(model_id)] if model_id else list(self.backends.values())
        stopped = [b.spec.id for b in targets if b.state is not _S.STOPPED]
        names = frozenset(b.spec.id for b in targets)
        message = f"model {model_id!r} was unloaded" if model_id else "every model was unloaded"
        self._decide(lambda: self.scheduler.unload(names, message + " while this request waited"))
        drain_s = self._config.shutdown_timeout_s
        tasks = [t for b in targets if (t := b.begin_stop(Cause.UNLOAD, drain_s)) is not None]
        if tasks:
            await asyncio.wait(tasks)
        return stopped

    def _ttl_of(self, backend: Backend) -> float:
        return backend.spec.ttl_s or self._config.global_ttl_s

    async def _reap_idle_forever(self) -> None:
        while True:
            await asyncio.sleep(_REAPER_INTERVAL_S)
            now = self._clock()
            for backend in self.backends.values():
                # is_idle_for and begin_stop run in one synchronous step: a request that
                # leased the backend meanwhile restarted its TTL clock, or waits and restarts it.
                if backend.is_idle_for(self._ttl_of(backend), now):
                    log.info("unloading %s: idle for %.0fs", backend.spec.id, self._ttl_of(backend))
                    backend.begin_stop(Cause.TTL, None)

    # ---- memory -------------------------------------------------------------------------

    async def _measure(self, model: str) -> None:
        """Measure the ready server's GPU memory (NVML, in a thread), now and a little later."""
        for delay in (0.0, _REMEASURE_AFTER_S):
            await asyncio.sleep(delay)
            backend = self.backends[model]
            pid = backend.pid
            if backend.state is not _S.READY or pid is None:
                return
            figure = await asyncio.to_thread(self.memory.measure, model, pid)
            if figure is not None:
                self.events.publish(
                    MemoryFigure(model, figure.mib, figure.source, self._clock(), figure.detail)
                )

    # ---- background tasks ---------------------------------------------------------------

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _supervise(self, name: str, run: Callable[[], object]) -> None:
        """Run a background loop forever: an exception is logged and the loop restarted."""

        async def supervised() -> None:
            while True:
                try:
                    await run()  # type: ignore[misc]
                except Exception:  # a crashed background loop restarts, it never dies quietly
                    log.exception("%s failed; restarting it in %.0fs", name, _RESTART_DELAY_S)
                await asyncio.sleep(_RESTART_DELAY_S)

        self._spawn(supervised())

    # ---- shutdown -----------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """From now on every acquire() raises ShuttingDown; queued requests are refused;
        in-flight leases carry on."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self._decide(lambda: self.scheduler.close("swapgate is shutting down; retry after restart"))

    async def wait_for_no_leases(self, timeout_s: float) -> bool:
        """Wait until no request holds a lease, at most `timeout_s`. True if none does."""
        waits = asyncio.gather(*(b.wait_idle() for b in self.backends.values()))
        try:
            await asyncio.wait_for(waits, timeout_s)
        except TimeoutError:
            return False
        return True

    async def shutdown(self, drain_timeout_s: float) -> None:
        """Refuse new work, give in-flight requests `drain_timeout_s`, stop every child."""
        self.begin_shutdown()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(
            *(b.ensure_stopped(Cause.SHUTDOWN, drain_timeout_s) for b in self.backends.values())
        )
        if self._runner.tasks:
            await asyncio.wait(self._runner.tasks, timeout=drain_timeout_s + 5.0)
        if self._health_session is not None:
            await self._health_session.close()

    def kill_all_now(self) -> None:
        """Synchronous last resort (atexit): SIGKILL every child group still alive."""
        for backend in self.backends.values():
            backend.kill_now()

    # ---- display ------------------------------------------------------------------------

    def running(self) -> Mapping[str, Backend]:
        """Backends that are not STOPPED, for display."""
        return {m: b for m, b in self.backends.items() if b.state is not _S.STOPPED}

    def queue(self) -> list[QueueEntry]:
        return self.scheduler.entries()
