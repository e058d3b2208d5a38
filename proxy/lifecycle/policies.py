"""Placement policies: given what runs and a target, which models must stop first. Pure.

Each policy answers `plan(target, running)` with a `Plan`: the models to stop (sorted), or
`blocked` with a sentence when the target cannot run even if everything it may stop stops.
Policies never log, never look at processes and never decide *when*: the scheduler asks them
speculatively, often, and applies its own rules (busy models, collisions, fairness).

- `GroupSwapPolicy`: llama-swap's groups (swap / exclusive / persistent), see eviction.py.
- `MatrixSwapPolicy`: llama-swap's matrix sets, solved at least eviction cost (matrix.py).
- `FitPolicy`: models run together while their memory figures fit a budget; idle models are
  stopped least recently used first, models in `keep` never.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from swapgate.proxy.lifecycle.eviction import Groups, evictions_for


@dataclass(frozen=True, slots=True)
class RunningModel:
    """One model that runs, starts or is committed to start, as a policy sees it."""

    model: str
    busy: bool  # requests in flight
    last_used: float


@dataclass(frozen=True, slots=True)
class Plan:
    """What must stop for a target to run, or why it cannot run at all right now."""

    evict: tuple[str, ...] = ()
    blocked: str | None = None


class Policy(Protocol):
    """A placement policy (see the module docstring)."""

    name: str

    def plan(self, target: str, running: Mapping[str, RunningModel]) -> Plan: ...


class GroupSwapPolicy:
    """llama-swap's `groups` semantics."""

    name = "group"

    def __init__(self, groups: Groups) -> None:
        self._groups = groups

    def plan(self, target: str, running: Mapping[str, RunningModel]) -> Plan:
        return Plan(evictions_for(target, running, self._groups))


class Evicter(Protocol):
    """Anything that says which running models a target evicts (the matrix solver)."""

    def evictions_for(self, target: str, running: Collection[str]) -> tuple[str, ...]: ...


class MatrixSwapPolicy:
    """llama-swap's `matrix` semantics: the cheapest set that contains the target."""

    name = "matrix"

    def __init__(self, solver: Evicter) -> None:
        self._solver = solver

    def plan(self, target: str, running: Mapping[str, RunningModel]) -> Plan:
        return Plan(self._solver.evictions_for(target, list(running)))


@dataclass(frozen=True, slots=True)
class FitSettings:
    """The memory budget and the models never stopped to make room."""

    budget_mib: int
    keep: frozenset[str] = frozenset()


class FitPolicy:
    """Run models together while their memory figures fit `budget_mib`."""

    name = "fit"

    def __init__(self, settings: FitSettings, need_mib: Callable[[str], int]) -> None:
        self._settings = settings
        self._need = need_mib  # current figure: configured, estimated or measured

    def plan(self, target: str, running: Mapping[str, RunningModel]) -> Plan:
        budget, need = self._settings.budget_mib, self._need(target)
        others = [r for m, r in running.items() if m != target]
        if need > budget:
            return Plan(
                blocked=f"{target} needs {need} MiB, more than the whole budget of {budget} MiB"
            )
        free = budget - sum(self._need(r.model) for r in others)
        if need <= free:
            return Plan()
        # Idle before busy, then least recently used first: the cheapest room to make.
        movable = sorted(
            (r for r in others if r.model not in self._settings.keep),
            key=lambda r: (r.busy, r.last_used),
        )
        evict: list[str] = []
        for candidate in movable:
            evict.append(candidate.model)
            free += self._need(candidate.model)
            if need <= free:
                return Plan(tuple(sorted(evict)))
        return Plan(blocked=self._no_room(target, need, budget, others))

    def _no_room(self, target: str, need: int, budget: int, others: list[RunningModel]) -> str:
        held = ", ".join(
            f"{r.model} {self._need(r.model)} MiB"
            + (" (keep)" if r.model in self._settings.keep else "")
            for r in sorted(others, key=lambda r: r.model)
        )
        return (
            f"{target} needs {need} MiB of a {budget} MiB budget and models that may not be "
            f"stopped hold the rest: {held or 'none'}"
        )


class SparingExternal:
    """A policy that leaves external models (servers swapgate does not run) out of it: they
    are never stopped to make room, and starting one evicts nobody."""

    def __init__(self, inner: Policy, external: frozenset[str]) -> None:
        self._inner = inner
        self._external = external
        self.name = inner.name

    def plan(self, target: str, running: Mapping[str, RunningModel]) -> Plan:
        if target in self._external:
            return Plan()
        local = {m: r for m, r in running.items() if m not in self._external}
        return self._inner.plan(target, local)
