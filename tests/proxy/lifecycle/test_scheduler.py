"""The scheduler as a pure state machine: fake effects, a fake clock, no processes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from swapgate.proxy.events import Cause
from swapgate.proxy.lifecycle.eviction import GroupPolicy, Groups
from swapgate.proxy.lifecycle.policies import FitPolicy, FitSettings, GroupSwapPolicy, Policy
from swapgate.proxy.lifecycle.scheduler import (
    Refusal,
    RefusalKind,
    Scheduler,
    SchedulerSettings,
    Waiter,
)
from swapgate.proxy.lifecycle.state import BackendState

_S = BackendState


@dataclass
class FakeEffects:
    """Records every effect; tests move backend states by hand, as the pool's tasks would."""

    states: dict[str, BackendState] = field(default_factory=dict)
    leases: dict[str, int] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    backoff: dict[str, float] = field(default_factory=dict)
    swaps: list[tuple[str, tuple[str, ...], Cause]] = field(default_factory=list)
    granted: list[Waiter] = field(default_factory=list)
    refused: list[tuple[Waiter, Refusal]] = field(default_factory=list)
    queue_events: list[Mapping[str, int]] = field(default_factory=list)
    gone: set[int] = field(default_factory=set)

    def state(self, model: str) -> BackendState:
        return self.states.get(model, _S.STOPPED)

    def running_models(self) -> list[str]:
        return [m for m, s in self.states.items() if s not in (_S.STOPPED, _S.FAILED)]

    def in_flight(self, model: str) -> int:
        return self.leases.get(model, 0)

    def last_used(self, model: str) -> float:
        return self.used.get(model, 0.0)

    def retry_after(self, model: str) -> float | None:
        return self.backoff.get(model)

    def start_swap(self, target: str, evict: tuple[str, ...], cause: Cause) -> None:
        self.swaps.append((target, evict, cause))
        for victim in evict:  # the pool moves victims to STOPPING synchronously
            if self.states.get(victim) in (_S.READY, _S.STARTING):
                self.states[victim] = _S.STOPPING

    def grant(self, waiter: Waiter) -> bool:
        if id(waiter) in self.gone:
            return False
        self.granted.append(waiter)
        self.leases[waiter.model] = self.leases.get(waiter.model, 0) + 1
        return True

    def refuse(self, waiter: Waiter, refusal: Refusal) -> None:
        self.refused.append((waiter, refusal))

    def queue_changed(self, queued: Mapping[str, int]) -> None:
        self.queue_events.append(queued)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(policy: Policy | None = None, **settings: object) -> tuple[Scheduler, FakeEffects, Clock]:
    effects = FakeEffects()
    clock = Clock()
    scheduler = Scheduler(
        effects,
        policy or GroupSwapPolicy(Groups({})),
        SchedulerSettings(**settings),  # type: ignore[arg-type]
        clock,
    )
    return scheduler, effects, clock


def ask(scheduler: Scheduler, clock: Clock, model: str, timeout: float | None = 600) -> Waiter:
    waiter = Waiter(model, clock.now, None if timeout is None else clock.now + timeout)
    scheduler.request(waiter)
    return waiter


def finish(scheduler: Scheduler, effects: FakeEffects, target: str) -> None:
    """The pool's swap task: victims stopped, target ready, then swap_done."""
    for _, evict, _ in [s for s in effects.swaps if s[0] == target]:
        for victim in evict:
            effects.states[victim] = _S.STOPPED
    effects.states[target] = _S.READY
    scheduler.swap_done(target, None)


def release(scheduler: Scheduler, effects: FakeEffects, model: str, count: int = 1) -> None:
    effects.leases[model] -= count
    scheduler.changed()


def test_ready_model_is_granted_at_once() -> None:
    """A request for a READY model with nothing to evict is granted inside request()."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.READY
    waiter = ask(scheduler, clock, "a")
    assert effects.granted == [waiter]
    assert effects.swaps == []


def test_requests_for_a_starting_model_join_one_start() -> None:
    """Five requests for a stopped model start it once and are all granted when it is ready."""
    scheduler, effects, clock = make()
    waiters = [ask(scheduler, clock, "a") for _ in range(5)]
    assert effects.swaps == [("a", (), Cause.SWAP)]
    assert effects.granted == []
    effects.states["a"] = _S.STARTING
    scheduler.changed()
    finish(scheduler, effects, "a")
    assert effects.granted == waiters
    assert len(effects.swaps) == 1


def test_collation_serves_queued_requests_of_the_busy_model_first() -> None:
    """A B A B A B arriving while A is busy: every A served by A, then one swap to B."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    for model in "ababab":
        ask(scheduler, clock, model)
        clock.now += 0.01
    assert [w.model for w in effects.granted] == ["a", "a", "a"]
    assert effects.swaps == []  # b waits: a is busy
    release(scheduler, effects, "a", 4)
    assert effects.swaps == [("b", ("a",), Cause.SWAP)]
    finish(scheduler, effects, "b")
    assert [w.model for w in effects.granted] == ["a", "a", "a", "b", "b", "b"]


def test_interleaved_requests_for_two_exclusive_models_swap_at_most_twice() -> None:
    """20 concurrent requests alternating two one-at-a-time models: two starts in all."""
    scheduler, effects, clock = make()
    for i in range(20):
        ask(scheduler, clock, "ab"[i % 2])
    assert [s[0] for s in effects.swaps] == ["a"]
    finish(scheduler, effects, "a")
    assert len(effects.granted) == 10
    release(scheduler, effects, "a", 10)
    finish(scheduler, effects, "b")
    assert len(effects.granted) == 20
    assert [s[0] for s in effects.swaps] == ["a", "b"]


def test_busy_model_is_never_evicted_before_the_fairness_bound() -> None:
    """A request that would evict a busy model waits; it is not granted and nothing stops."""
    scheduler, effects, clock = make(max_wait_s=30.0)
    effects.states["a"] = _S.READY
    effects.leases["a"] = 2
    waiter = ask(scheduler, clock, "b")
    assert effects.swaps == []
    assert "finish" in waiter.blocked
    assert scheduler.next_wakeup() == pytest.approx(clock.now + 30.0)


def test_fairness_bound_drains_the_busy_model_and_swaps() -> None:
    """Once the oldest waiter has waited maxWaitSeconds, the busy model is made to drain."""
    scheduler, effects, clock = make(max_wait_s=30.0)
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    ask(scheduler, clock, "b")
    clock.now += 30.0
    scheduler.timer()
    assert effects.swaps == [("b", ("a",), Cause.FAIRNESS)]
    # a no longer takes new queued requests: it is STOPPING
    late = ask(scheduler, clock, "a")
    assert late not in effects.granted


def test_priority_orders_the_queue() -> None:
    """With a slot opening, the higher-priority model goes first even if it came later."""
    scheduler, effects, clock = make(priority={"c": 10})
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    ask(scheduler, clock, "b")
    clock.now += 1
    ask(scheduler, clock, "c")
    release(scheduler, effects, "a")
    assert [s[0] for s in effects.swaps] == ["c"]


def test_equal_priority_goes_in_arrival_order() -> None:
    """Ties in priority are broken by the oldest waiter."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    ask(scheduler, clock, "c")
    clock.now += 1
    ask(scheduler, clock, "b")
    release(scheduler, effects, "a")
    assert [s[0] for s in effects.swaps] == ["c"]


def test_disjoint_swaps_run_in_parallel() -> None:
    """Two models in different non-exclusive groups start together; neither waits."""
    groups = Groups(
        {
            "a": GroupPolicy("g1", swap=True, exclusive=False),
            "b": GroupPolicy("g2", swap=True, exclusive=False),
        }
    )
    scheduler, effects, clock = make(GroupSwapPolicy(groups))
    ask(scheduler, clock, "a")
    ask(scheduler, clock, "b")
    assert [s[0] for s in effects.swaps] == ["a", "b"]


def test_model_that_evicts_nobody_never_waits_behind_another_swap() -> None:
    """A non-exclusive group member starts while another group's cold start is in motion."""
    groups = Groups(
        {
            "a": GroupPolicy("g1"),
            "b": GroupPolicy("g1"),
            "x": GroupPolicy("free", swap=False, exclusive=False, persistent=True),
        }
    )
    scheduler, effects, clock = make(GroupSwapPolicy(groups))
    effects.states["a"] = _S.READY
    ask(scheduler, clock, "b")  # swap a -> b in motion
    assert effects.swaps[0][0] == "b"
    ask(scheduler, clock, "x")
    assert [s[0] for s in effects.swaps] == ["b", "x"]


def test_cancelled_waiter_triggers_no_swap() -> None:
    """A client that leaves while queued behind a busy model causes no stop and no start."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    waiter = ask(scheduler, clock, "b")
    assert scheduler.waiting
    scheduler.cancel(waiter)
    assert scheduler.queued("b") == 0
    release(scheduler, effects, "a")
    assert effects.swaps == []
    assert effects.states["a"] is _S.READY


def test_deadline_refuses_with_queue_timeout_and_the_reason() -> None:
    """A waiter past its queueTimeout leaves with queue_timeout, Retry-After and why it waited."""
    scheduler, effects, clock = make(max_wait_s=1000.0)
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    waiter = ask(scheduler, clock, "b", timeout=5)
    assert scheduler.next_wakeup() == pytest.approx(clock.now + 5)
    clock.now += 5
    scheduler.timer()
    ((who, refusal),) = effects.refused
    assert who is waiter
    assert refusal.kind is RefusalKind.QUEUE_TIMEOUT
    assert refusal.retry_after_s is not None
    assert "finish" in refusal.message
    assert scheduler.queued("b") == 0


def test_unbounded_waiter_has_no_deadline() -> None:
    """queueTimeout 0 (deadline None) adds no wake-up of its own."""
    scheduler, effects, clock = make(max_wait_s=1e9)
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    ask(scheduler, clock, "b", timeout=None)
    clock.now += 1e6
    scheduler.timer()
    assert effects.refused == []


def test_start_failure_refuses_each_waiter_separately() -> None:
    """A failed start refuses every joined waiter, each with its own Refusal record."""
    scheduler, effects, clock = make()
    waiters = [ask(scheduler, clock, "a") for _ in range(3)]
    effects.states["a"] = _S.FAILED
    scheduler.swap_done("a", "model 'a' exited with code 1 during startup")
    assert [w for w, _ in effects.refused] == waiters
    assert {r.kind for _, r in effects.refused} == {RefusalKind.START_FAILED}


def test_backoff_refuses_at_admission() -> None:
    """While a failed model backs off, a request is refused at once with its Retry-After."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.FAILED
    effects.backoff["a"] = 4.0
    ask(scheduler, clock, "a")
    ((_, refusal),) = effects.refused
    assert refusal.kind is RefusalKind.BACKOFF
    assert refusal.retry_after_s == 4.0
    assert effects.swaps == []


def test_failed_model_past_backoff_is_started_again() -> None:
    """Once the back-off has elapsed, a FAILED model is started by the next request."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.FAILED
    ask(scheduler, clock, "a")
    assert effects.swaps == [("a", (), Cause.SWAP)]


def test_concurrency_limit_is_admission_control() -> None:
    """concurrencyLimit counts in-flight and queued requests, refusing with 429 beyond it."""
    scheduler, effects, clock = make(concurrency_limit={"a": 2})
    ask(scheduler, clock, "a")
    ask(scheduler, clock, "a")
    ask(scheduler, clock, "a")
    assert [r.kind for _, r in effects.refused] == [RefusalKind.CONCURRENCY]


def test_unload_refuses_waiters_of_that_model_only() -> None:
    """Unloading a model refuses its waiters; waiters for others stay queued."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    b = ask(scheduler, clock, "b")
    c = ask(scheduler, clock, "c")
    scheduler.unload(frozenset({"b"}), "model 'b' was unloaded")
    assert [w for w, _ in effects.refused] == [b]
    assert scheduler.queued("c") == 1
    assert c not in effects.granted


def test_close_refuses_everyone_now_and_later() -> None:
    """Shutdown refuses every queued waiter and every later request."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    ask(scheduler, clock, "b")
    scheduler.close("shutting down")
    ask(scheduler, clock, "a")
    assert [r.kind for _, r in effects.refused] == [RefusalKind.CLOSED, RefusalKind.CLOSED]


def test_queue_counts_are_published_on_change() -> None:
    """queue_changed reports the per-model counts each time they change, and only then."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    ask(scheduler, clock, "b")
    ask(scheduler, clock, "b")
    assert effects.queue_events == [{"b": 1}, {"b": 2}]
    release(scheduler, effects, "a")
    finish(scheduler, effects, "b")
    assert effects.queue_events[-1] == {}


def test_a_granted_waiter_that_left_takes_no_lease() -> None:
    """A grant to a client that already left is dropped without counting a lease."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    effects.states["b"] = _S.STOPPED
    waiter = Waiter("a", clock.now, None)
    effects.gone.add(id(waiter))
    scheduler.request(waiter)
    assert effects.leases["a"] == 1


def _fit(budget: int, need: dict[str, int], keep: frozenset[str] = frozenset()) -> FitPolicy:
    return FitPolicy(FitSettings(budget, keep), lambda m: need.get(m, 0))


def test_fit_runs_models_together_while_they_fit() -> None:
    """With room in the budget a second model starts without stopping the first."""
    scheduler, effects, clock = make(_fit(1000, {"a": 400, "b": 500}))
    effects.states["a"] = _S.READY
    ask(scheduler, clock, "b")
    assert effects.swaps == [("b", (), Cause.SWAP)]


def test_fit_evicts_idle_models_least_recently_used_first() -> None:
    """To make room, the idle model used longest ago stops; a busy one is left alone."""
    need = {"a": 400, "b": 400, "c": 400, "d": 400}
    scheduler, effects, clock = make(_fit(1300, need))
    for model, used in (("a", 10.0), ("b", 5.0), ("c", 1.0)):
        effects.states[model] = _S.READY
        effects.used[model] = used
    effects.leases["c"] = 1  # c is the least recently used, but busy
    ask(scheduler, clock, "d")
    assert effects.swaps == [("d", ("b",), Cause.SWAP)]


def test_fit_never_evicts_keep() -> None:
    """A model in settings.fit.keep is never stopped; the target waits and says why."""
    scheduler, effects, clock = make(_fit(1000, {"a": 700, "b": 500}, frozenset({"a"})))
    effects.states["a"] = _S.READY
    waiter = ask(scheduler, clock, "b", timeout=10)
    assert effects.swaps == []
    assert "keep" in waiter.blocked
    clock.now += 10
    scheduler.timer()
    ((_, refusal),) = effects.refused
    assert "a 700 MiB (keep)" in refusal.message


def test_fit_model_larger_than_the_budget_is_blocked() -> None:
    """A model that cannot fit even alone waits, then is refused naming the figures."""
    scheduler, effects, clock = make(_fit(1000, {"a": 2000}))
    waiter = ask(scheduler, clock, "a", timeout=1)
    assert "more than the whole budget" in waiter.blocked
    assert effects.swaps == []


def test_lower_ranked_start_does_not_undo_an_earlier_waiter() -> None:
    """Under fit, a later model is not started into room an earlier waiter needs."""
    need = {"a": 500, "b": 700, "c": 400}
    scheduler, effects, clock = make(_fit(1000, need))
    effects.states["a"] = _S.READY
    effects.leases["a"] = 1
    ask(scheduler, clock, "b")  # waits for busy a
    clock.now += 1
    ask(scheduler, clock, "c")  # fits next to a, but b would then have to evict c too
    assert effects.swaps == []


def test_invariant_never_two_swaps_for_one_model() -> None:
    """However requests interleave, a model is never the target of two swaps at once."""
    scheduler, effects, clock = make()
    for i in range(50):
        ask(scheduler, clock, "abc"[i % 3])
        targets = [t for t, _, _ in effects.swaps]
        active = [t for t in targets if t in scheduler.swaps()]
        assert len(active) == len(set(active))
    assert len(scheduler.swaps()) == 1


def test_reload_sends_every_waiter_back_to_be_decided_again() -> None:
    """A reload refuses each queued waiter with RELOADED (the handler decides it again),
    keeps the swap in motion, and decides later requests with the new settings."""
    scheduler, effects, clock = make()
    effects.states["a"] = _S.STARTING
    first, second = ask(scheduler, clock, "a"), ask(scheduler, clock, "b")
    scheduler.reload(GroupSwapPolicy(Groups({})), SchedulerSettings(priority={"c": 5}), "reloaded")
    assert [(w, r.kind) for w, r in effects.refused] == [
        (first, RefusalKind.RELOADED),
        (second, RefusalKind.RELOADED),
    ]
    assert not scheduler.waiting
    again = Waiter("c", first.arrived, None)  # comes back keeping its arrival time
    scheduler.request(again)
    assert again.priority == 5
    assert scheduler.entries()[0].waiting_since == first.arrived
