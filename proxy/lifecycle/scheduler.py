"""Scheduler: the queue of waiting requests as data, and every decision about who runs next.

Pure and synchronous. Events come in as method calls (`request`, `cancel`, `swap_done`,
`changed`, `unload`, `reload`, `close`, `timer`); effects go out through `Effects` (start a swap, grant
or refuse a waiter). Nothing here awaits, sleeps, logs or touches a process: the pool carries
the effects out in tasks and feeds their outcomes back as events, so a decision is one
synchronous stretch and can never be invalidated half-way by another request.

The rules, in order, each time something changes (`_step`):
1. Waiters whose deadline passed leave with `queue_timeout`.
2. Collation: a READY model serves every request queued for it, so A B A B arriving while A
   is busy is served A A, then B B after one swap.
3. Models still waited for are ranked by priority (higher first), then by their oldest
   waiter. For each, the policy says what must stop. A start is committed only when it
   collides with no swap in motion, undoes nothing a higher-ranked waiter needs, and evicts
   no busy model, unless the oldest waiter has waited `max_wait_s` (fairness: then the busy
   model drains and the swap happens, so no model starves). Swaps that touch disjoint models
   run in parallel; a model that evicts nobody never waits behind another model's swap.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from swapgate.proxy.events import Cause
from swapgate.proxy.lifecycle.policies import Plan, Policy, RunningModel
from swapgate.proxy.lifecycle.state import BackendState

_S = BackendState
QUEUE_RETRY_AFTER_S = 5.0
CONCURRENCY_RETRY_AFTER_S = 1.0


class RefusalKind(enum.StrEnum):
    """Why a waiter leaves without a lease; the pool maps each to an error class."""

    QUEUE_TIMEOUT = "queue_timeout"
    CONCURRENCY = "concurrency_limit"
    BACKOFF = "backend_failed"
    START_FAILED = "backend_start_failed"
    UNLOADED = "model_unloaded"
    RELOADED = "config_reloaded"  # not an answer: the request is decided again
    CLOSED = "shutting_down"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A decision to turn a waiter away, with what the client should be told."""

    kind: RefusalKind
    message: str
    retry_after_s: float | None = None


@dataclass(eq=False, slots=True)
class Waiter:
    """One request waiting for a model; compared by identity."""

    model: str
    arrived: float
    deadline: float | None  # monotonic; None waits without bound
    priority: int = 0
    blocked: str = ""  # why it still waits: /running, loading progress, the timeout message
    wake_at: float | None = field(default=None, repr=False)  # when fairness applies to it


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One model's place in the queue, for display."""

    model: str
    queued: int
    rank: int
    waiting_since: float
    blocked: str


class Effects(Protocol):
    """The scheduler's whole window onto the world (carried out by the pool)."""

    def state(self, model: str) -> BackendState: ...
    def running_models(self) -> list[str]: ...  # every model not STOPPED or FAILED
    def in_flight(self, model: str) -> int: ...
    def last_used(self, model: str) -> float: ...
    def retry_after(self, model: str) -> float | None: ...
    def start_swap(self, target: str, evict: tuple[str, ...], cause: Cause) -> None: ...
    def grant(self, waiter: Waiter) -> bool: ...
    def refuse(self, waiter: Waiter, refusal: Refusal) -> None: ...
    def queue_changed(self, queued: Mapping[str, int]) -> None: ...


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """Fairness bound, priorities and admission limits (0 = unlimited)."""

    max_wait_s: float = 30.0
    priority: Mapping[str, int] = field(default_factory=dict)
    concurrency_limit: Mapping[str, int] = field(default_factory=dict)


class Scheduler:
    """Owns the queue and the swaps in motion; see the module docstring for the rules."""

    def __init__(
        self,
        effects: Effects,
        policy: Policy,
        settings: SchedulerSettings,
        clock: Callable[[], float],
    ) -> None:
        self._effects = effects
        self._policy = policy
        self._settings = settings
        self._clock = clock
        self._queue: list[Waiter] = []
        self._swaps: dict[str, tuple[str, ...]] = {}  # target -> evicted, committed, not done
        self._closed: Refusal | None = None
        self._pumping = False
        self._again = False
        self._published: dict[str, int] = {}

    # ---- events ----------------------------------------------------------------------------

    def request(self, waiter: Waiter) -> None:
        """A request needs `waiter.model`; it is granted, refused or queued before returning."""
        refusal = self._admission(waiter)
        if refusal is not None:
            self._effects.refuse(waiter, refusal)
            return
        waiter.priority = self._settings.priority.get(waiter.model, waiter.priority)
        self._queue.append(waiter)
        self.pump()

    def cancel(self, waiter: Waiter) -> None:
        """The waiter's client left: forget it, so nothing is started or stopped for it."""
        if waiter in self._queue:
            self._queue.remove(waiter)
            self.pump()

    def swap_done(self, target: str, failure: str | None) -> None:
        """A committed swap ended: the target is READY, or `failure` says why not."""
        self._swaps.pop(target, None)
        if failure is not None:
            refusal = Refusal(RefusalKind.START_FAILED, failure)
            self._refuse_where(lambda w: w.model == target, refusal)
        self.pump()

    def unload(self, models: frozenset[str], message: str) -> None:
        """An operator unloads `models`: their waiters are refused (llama-swap does the same)."""
        self._refuse_where(lambda w: w.model in models, Refusal(RefusalKind.UNLOADED, message))
        self.pump()

    def reload(self, policy: Policy, settings: SchedulerSettings, message: str) -> None:
        """The config was reloaded: decide with `policy` and `settings` from now on. Every
        waiter leaves with a RELOADED refusal, so each request is decided again against the
        new config (routes, aliases, keys) and comes back keeping its arrival time; swaps in
        motion carry on."""
        self._policy = policy
        self._settings = settings
        self._refuse_where(lambda _w: True, Refusal(RefusalKind.RELOADED, message))
        self.pump()

    def close(self, message: str) -> None:
        """Shutdown: refuse every waiter now and every request from now on."""
        self._closed = Refusal(RefusalKind.CLOSED, message)
        self._refuse_where(lambda _w: True, self._closed)
        self._publish_counts()

    def changed(self) -> None:
        """A backend changed state or went idle: decide again."""
        self.pump()

    def timer(self) -> None:
        """`next_wakeup()` was reached: deadlines and fairness bounds may have passed."""
        self.pump()

    # ---- queries ---------------------------------------------------------------------------

    def next_wakeup(self) -> float | None:
        """The earliest time a decision may change without any event, or None."""
        times = [t for w in self._queue for t in (w.deadline, w.wake_at) if t is not None]
        return min(times, default=None)

    @property
    def waiting(self) -> bool:
        """True while any request waits."""
        return bool(self._queue)

    def queued(self, model: str) -> int:
        return sum(1 for w in self._queue if w.model == model)

    def ahead_of(self, waiter: Waiter) -> int:
        """How many waiters are ranked before `waiter` (for loading progress)."""
        if waiter not in self._queue:
            return 0
        ranked = sorted(self._queue, key=self._rank_key)
        return ranked.index(waiter)

    def entries(self) -> list[QueueEntry]:
        return [
            QueueEntry(model, len(ws), rank, min(w.arrived for w in ws), ws[0].blocked)
            for rank, (model, ws) in enumerate(self._by_model())
        ]

    def swaps(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self._swaps)

    # ---- deciding --------------------------------------------------------------------------

    def pump(self) -> None:
        """Decide until nothing changes. Effects may report back synchronously (a state
        change while stopping a victim): those re-entrant calls only ask for another pass."""
        if self._pumping:
            self._again = True
            return
        self._pumping = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._step(self._clock())
        finally:
            self._pumping = False
        self._publish_counts()

    def _admission(self, waiter: Waiter) -> Refusal | None:
        if self._closed is not None:
            return self._closed
        model = waiter.model
        limit = self._settings.concurrency_limit.get(model, 0)
        if limit and self._effects.in_flight(model) + self.queued(model) >= limit:
            msg = f"model {model!r} already has {limit} requests (concurrencyLimit); retry shortly"
            return Refusal(RefusalKind.CONCURRENCY, msg, CONCURRENCY_RETRY_AFTER_S)
        if model not in self._swaps and self._effects.state(model) is _S.FAILED:
            retry = self._effects.retry_after(model)
            if retry is not None:
                return Refusal(RefusalKind.BACKOFF, f"model {model!r} keeps failing", retry)
        return None

    def _step(self, now: float) -> None:
        self._expire(now)
        pending: list[tuple[str, list[Waiter]]] = []
        for model, waiters in self._by_model():
            if self._effects.state(model) is _S.READY:
                self._grant_all(waiters)
            else:
                pending.append((model, waiters))
        claimed = {m for target, evict in self._swaps.items() for m in (target, *evict)}
        ahead: list[str] = []
        for model, waiters in pending:
            if self._consider(model, waiters, now, claimed, ahead):
                ahead.append(model)

    def _consider(
        self, model: str, waiters: list[Waiter], now: float, claimed: set[str], ahead: list[str]
    ) -> bool:
        """Start a swap for `model` if the rules allow; True if it still waits for one."""
        state = self._effects.state(model)
        if model in self._swaps or state is _S.STARTING:
            _mark(waiters, f"{model} is loading")
            return False
        if state is _S.FAILED and (retry := self._effects.retry_after(model)) is not None:
            self._refuse_where(
                lambda w: w.model == model,
                Refusal(RefusalKind.BACKOFF, f"model {model!r} keeps failing", retry),
            )
            return False
        running = self._running_view()
        plan = self._policy.plan(model, running)
        reason = self._wait_reason(model, plan, running, claimed, ahead)
        cause = Cause.SWAP
        if reason is None:
            busy = [m for m in plan.evict if self._effects.in_flight(m) > 0]
            oldest = min(w.arrived for w in waiters)
            if busy and now - oldest < self._settings.max_wait_s:
                reason = f"waiting for {', '.join(busy)} to finish its requests"
                for w in waiters:
                    w.wake_at = oldest + self._settings.max_wait_s
            elif busy:
                cause = Cause.FAIRNESS
        if reason is not None:
            _mark(waiters, reason)
            return True
        # no effect between the checks above and this commit: one synchronous decision
        self._swaps[model] = plan.evict
        claimed.update((model, *plan.evict))
        _mark(waiters, f"{model} is loading")
        for w in waiters:
            w.wake_at = None
        self._effects.start_swap(model, plan.evict, cause)
        return False

    def _wait_reason(
        self,
        model: str,
        plan: Plan,
        running: Mapping[str, RunningModel],
        claimed: set[str],
        ahead: list[str],
    ) -> str | None:
        if plan.blocked is not None:
            return plan.blocked
        collides = sorted(claimed.intersection((model, *plan.evict)))
        if collides:
            return f"waiting for the swap of {', '.join(collides)} to finish"
        # Starting `model` must not put in place what a request ranked before it would have
        # to stop again: that is how priorities and arrival order hold across policies.
        with_model = {**running, model: RunningModel(model, busy=True, last_used=self._clock())}
        for earlier in ahead:
            if model in self._policy.plan(earlier, with_model).evict:
                return f"waiting behind requests for {earlier}"
        return None

    def _running_view(self) -> dict[str, RunningModel]:
        models = {w.model for w in self._queue} | set(self._swaps)
        models.update(self._effects.running_models())
        view: dict[str, RunningModel] = {}
        for model in models:
            state = self._effects.state(model)
            if model in self._swaps or state not in (_S.STOPPED, _S.FAILED):
                busy = self._effects.in_flight(model) > 0
                view[model] = RunningModel(model, busy, self._effects.last_used(model))
        return view

    # ---- bookkeeping -----------------------------------------------------------------------

    def _rank_key(self, waiter: Waiter) -> tuple[int, float]:
        return (-waiter.priority, waiter.arrived)

    def _by_model(self) -> list[tuple[str, list[Waiter]]]:
        groups: dict[str, list[Waiter]] = {}
        for waiter in sorted(self._queue, key=self._rank_key):
            groups.setdefault(waiter.model, []).append(waiter)
        return list(groups.items())

    def _grant_all(self, waiters: list[Waiter]) -> None:
        for waiter in waiters:
            self._queue.remove(waiter)
            self._effects.grant(waiter)  # False: the client left; nothing was leased

    def _expire(self, now: float) -> None:
        for waiter in [w for w in self._queue if w.deadline is not None and w.deadline <= now]:
            self._queue.remove(waiter)
            waited = now - waiter.arrived
            why = f" ({waiter.blocked})" if waiter.blocked else ""
            msg = f"waited {waited:.0f}s for model {waiter.model!r}{why}; retry later"
            self._effects.refuse(
                waiter, Refusal(RefusalKind.QUEUE_TIMEOUT, msg, QUEUE_RETRY_AFTER_S)
            )

    def _refuse_where(self, chosen: Callable[[Waiter], bool], refusal: Refusal) -> None:
        leaving = [w for w in self._queue if chosen(w)]
        for waiter in leaving:
            self._queue.remove(waiter)
            self._effects.refuse(waiter, refusal)

    def _publish_counts(self) -> None:
        counts: dict[str, int] = {}
        for waiter in self._queue:
            counts[waiter.model] = counts.get(waiter.model, 0) + 1
        if counts != self._published:
            self._published = counts
            self._effects.queue_changed(dict(counts))


def _mark(waiters: list[Waiter], reason: str) -> None:
    for waiter in waiters:
        waiter.blocked = reason
