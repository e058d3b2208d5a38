"""SwapRunner: carries out the scheduler's effects on real backends.

The scheduler decides synchronously; this module does what it said. A swap runs in a task
it owns (stop the evicted backends, draining each up to its drainTimeout, then start the
target) and always reports back with `swap_done`, whatever is raised. Grants hand a lease to
the waiter's future, refusals a fresh exception built from the refusal record, so nothing
outlives its request. Imports no web code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from swapgate.proxy.config.model import Config
from swapgate.proxy.errors import (
    BackendFailed,
    BackendStartFailed,
    ConcurrencyLimited,
    ConfigChanged,
    ModelUnloaded,
    QueueTimeout,
    ShuttingDown,
    SwapgateError,
)
from swapgate.proxy.events import Cause, EventBus, QueueChanged, SwapFinished, SwapStarted
from swapgate.proxy.lifecycle.backend import Backend
from swapgate.proxy.lifecycle.lease import Lease
from swapgate.proxy.lifecycle.scheduler import Refusal, RefusalKind, Scheduler, Waiter
from swapgate.proxy.lifecycle.state import BackendState

log = logging.getLogger("swapgate.pool")

_S = BackendState


class SwapRunner:
    """The scheduler's `Effects`, over the pool's backends and the waiters' futures."""

    def __init__(
        self,
        config: Config,
        backends: Mapping[str, Backend],
        bus: EventBus,
        clock: Callable[[], float],
    ) -> None:
        self.config = config  # replaced on reload
        self._backends = backends
        self._bus = bus
        self._clock = clock
        self.futures: dict[Waiter, asyncio.Future[Lease]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.scheduler: Scheduler | None = None  # set by the pool right after construction

    # ---- what the scheduler reads -----------------------------------------------------

    def state(self, model: str) -> BackendState:
        return self._backends[model].state

    def running_models(self) -> list[str]:
        return [m for m, b in self._backends.items() if b.state not in (_S.STOPPED, _S.FAILED)]

    def in_flight(self, model: str) -> int:
        return self._backends[model].in_flight

    def last_used(self, model: str) -> float:
        return self._backends[model].last_used

    def retry_after(self, model: str) -> float | None:
        return self._backends[model].backoff.retry_after(self._clock())

    # ---- what the scheduler does ------------------------------------------------------

    def start_swap(self, target: str, evict: tuple[str, ...], cause: Cause) -> None:
        if evict:
            log.info("swap: stopping %s to run %s (%s)", ", ".join(evict), target, cause)
        stops = []
        for victim in evict:
            backend = self._backends[victim]
            drain = self.config.drain_timeout_s(backend.spec) or None
            task = backend.begin_stop(cause, drain)
            if task is not None:
                stops.append(task)
        started = self._clock()
        self._bus.publish(SwapStarted(target, evict, started))
        task = asyncio.create_task(self._swap(target, evict, stops, started))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _swap(
        self, target: str, evict: tuple[str, ...], stops: list[asyncio.Task[None]], started: float
    ) -> None:
        failure: str | None = "swap did not finish"
        try:
            if stops:
                await asyncio.wait(stops)
            await self._backends[target].ensure_ready()
            failure = None
        except SwapgateError as exc:
            failure = exc.message
        except asyncio.CancelledError:
            failure = "swapgate is shutting down"
            raise
        except Exception as exc:  # the swap must report back, whatever went wrong
            log.exception("swap to %s failed unexpectedly", target)
            failure = f"swap to {target!r} failed: {exc!r}"
        finally:
            now = self._clock()
            self._bus.publish(SwapFinished(target, evict, now - started, now, failure or ""))
            if self.scheduler is not None:
                self.scheduler.swap_done(target, failure)

    def grant(self, waiter: Waiter) -> bool:
        future = self.futures.pop(waiter, None)
        if future is None or future.done():
            return False  # the client left; no lease is taken for it
        try:
            lease = self._backends[waiter.model].try_lease()
        except ConcurrencyLimited as exc:
            future.set_exception(exc)
            return False
        if lease is None:  # not READY after all: cannot happen inside one decision
            future.set_exception(ShuttingDown(f"model {waiter.model!r} stopped; retry"))
            return False
        future.set_result(lease)
        return True

    def refuse(self, waiter: Waiter, refusal: Refusal) -> None:
        future = self.futures.pop(waiter, None)
        if future is None or future.done():
            return
        if refusal.kind is RefusalKind.RELOADED:
            future.set_exception(ConfigChanged(refusal.message, arrived=waiter.arrived))
        else:
            future.set_exception(self._error(waiter.model, refusal))

    def queue_changed(self, queued: Mapping[str, int]) -> None:
        self._bus.publish(QueueChanged(tuple(sorted(queued.items())), self._clock()))

    def _error(self, model: str, refusal: Refusal) -> SwapgateError:
        """A fresh exception per waiter: no traceback or request body is shared or kept."""
        kind, message, retry = refusal.kind, refusal.message, refusal.retry_after_s or 1.0
        if kind is RefusalKind.QUEUE_TIMEOUT:
            return QueueTimeout(message + " (queueTimeout)", retry_after_s=retry)
        if kind is RefusalKind.CONCURRENCY:
            return ConcurrencyLimited(message)
        if kind is RefusalKind.BACKOFF:
            return BackendFailed(self._backoff_message(model, retry), retry_after_s=retry)
        if kind is RefusalKind.START_FAILED:
            return BackendStartFailed(message)
        if kind is RefusalKind.UNLOADED:
            return ModelUnloaded(message)
        return ShuttingDown(message)

    def _backoff_message(self, model: str, retry: float) -> str:
        backoff = self._backends[model].backoff
        last = backoff.last.message if backoff.last is not None else "unknown"
        return (
            f"model {model!r} failed {backoff.failures} time(s) in a row; swapgate waits "
            f"{retry:.1f}s before starting it again. Last failure: {last}"
        )
