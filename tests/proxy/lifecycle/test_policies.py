"""Placement policies as tables of cases: running set + target -> what must stop. Pure."""

from __future__ import annotations

import pytest

from swapgate.proxy.lifecycle.eviction import GroupPolicy, Groups
from swapgate.proxy.lifecycle.policies import (
    FitPolicy,
    FitSettings,
    GroupSwapPolicy,
    Plan,
    RunningModel,
    SparingExternal,
)


def running(*specs: tuple[str, bool, float]) -> dict[str, RunningModel]:
    return {m: RunningModel(m, busy, used) for m, busy, used in specs}


GROUPS = Groups(
    {
        "a": GroupPolicy("g", swap=True, exclusive=False),
        "b": GroupPolicy("g", swap=True, exclusive=False),
        "p": GroupPolicy("keep", swap=False, exclusive=False, persistent=True),
    }
)


@pytest.mark.parametrize(
    ("target", "now", "evict"),
    [
        ("a", [], ()),
        ("b", ["a"], ("a",)),  # same swap group
        ("b", ["a", "p"], ("a",)),  # persistent group untouched
        ("x", ["a", "p"], ("a",)),  # the default group is exclusive, p persists
        ("a", ["a"], ()),  # the target itself is never evicted
    ],
)
def test_group_policy(target: str, now: list[str], evict: tuple[str, ...]) -> None:
    """llama-swap's group semantics through the policy interface."""
    view = running(*((m, False, 0.0) for m in now))
    assert GroupSwapPolicy(GROUPS).plan(target, view) == Plan(evict)


NEED = {"a": 300, "b": 300, "c": 300, "big": 2000, "t": 500}


@pytest.mark.parametrize(
    ("now", "keep", "expected"),
    [
        ([], (), Plan()),
        ([("a", False, 1.0)], (), Plan()),  # 300 + 500 fits 1000
        ([("a", False, 1.0), ("b", False, 2.0)], (), Plan(("a",))),  # LRU first
        ([("a", True, 1.0), ("b", False, 2.0)], (), Plan(("b",))),  # idle before busy
        ([("a", True, 1.0), ("b", True, 2.0)], (), Plan(("a",))),  # then busy, LRU
        ([("a", False, 1.0), ("b", False, 2.0)], ("a",), Plan(("b",))),  # keep is kept
    ],
)
def test_fit_policy(
    now: list[tuple[str, bool, float]], keep: tuple[str, ...], expected: Plan
) -> None:
    """fit: evict the fewest, idle and least recently used first, never keep."""
    policy = FitPolicy(FitSettings(1000, frozenset(keep)), NEED.__getitem__)
    assert policy.plan("t", running(*now)) == expected


def test_fit_blocked_names_every_holder_and_figure() -> None:
    """When keep holds too much, the plan is blocked with the figures in the message."""
    policy = FitPolicy(FitSettings(1000, frozenset({"a", "b"})), NEED.__getitem__)
    plan = policy.plan("t", running(("a", False, 1.0), ("b", False, 2.0), ("c", False, 3.0)))
    assert plan.evict == ()
    assert plan.blocked == (
        "t needs 500 MiB of a 1000 MiB budget and models that may not be stopped hold the "
        "rest: a 300 MiB (keep), b 300 MiB (keep), c 300 MiB"
    )


def test_fit_model_over_the_whole_budget_is_blocked() -> None:
    """A model bigger than the budget can never run; the plan says so."""
    policy = FitPolicy(FitSettings(1000), NEED.__getitem__)
    assert policy.plan("big", {}).blocked == (
        "big needs 2000 MiB, more than the whole budget of 1000 MiB"
    )


def test_external_models_are_never_evicted_and_evict_nobody() -> None:
    """SparingExternal: a server swapgate does not run is left out of every plan."""
    inner = GroupSwapPolicy(Groups({}))  # one exclusive swap group: everything else must go
    policy = SparingExternal(inner, frozenset({"remote"}))
    view = running(("remote", False, 0.0), ("a", False, 1.0))
    assert policy.plan("b", view) == Plan(("a",))
    assert policy.plan("remote", view) == Plan()
    assert policy.name == "group"
