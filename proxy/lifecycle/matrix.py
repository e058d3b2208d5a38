"""The matrix solver: which running models stop so a target can run, at least eviction cost.

Owns solve() and MatrixPolicy over a compiled MatrixProgram. Pure and silent: no I/O, no
logging, no asyncio; imports only the stdlib and proxy.config.matrix.

A set allows any subset of each of its alternatives. solve() picks, among the alternatives that
contain the target, the one whose missing running models cost least to evict; ties go to the
earlier set, then to the earlier alternative (left to right, as the expression expands).

It never expands an expression fully. Each node's alternatives are projected onto the models
that matter for this one call (the target and what runs), as a bit mask, and an alternative is
dropped when an earlier one at the same node already allows every relevant model it allows
(llama-swap's frontier, see internal/matrix/doc.go). The work is bounded by the number of
distinct masks, 2 ** (1 + len(running)), not by the size of the Cartesian product.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from swapgate.proxy.config.matrix import And, Expr, Leaf, MatrixProgram, MatrixSet, Or

# Which models one alternative is made of, as a tree of the choices (flattened only for the
# winner, so that combining two alternatives costs O(1)).
Witness: TypeAlias = str | tuple["Witness", "Witness"] | None
_State: TypeAlias = tuple[int, Witness]  # (mask over the relevant models, witness)


@dataclass(frozen=True, slots=True)
class MatrixDecision:
    """What solve() chose: the set, every model of the chosen alternative, what must stop."""

    set_name: str | None  # None: the target is in no set and runs alone
    keep: frozenset[str]  # the chosen alternative (llama-swap's TargetSet); always has target
    evict: tuple[str, ...]  # sorted
    cost: int  # the sum of the evicted models' costs


class _Projection:
    """Alternatives of the program's nodes projected onto the relevant models, memoized."""

    def __init__(self, relevant: Sequence[str]) -> None:
        self.bits = {model: 1 << i for i, model in enumerate(dict.fromkeys(relevant))}
        # Keyed by id(): nodes are shared through references and live as long as the program.
        self._memo: dict[int, list[_State]] = {}

    def mask_of(self, models: Iterable[str]) -> int:
        mask = 0
        for model in models:
            mask |= self.bits.get(model, 0)
        return mask

    def states(self, node: Expr) -> list[_State]:
        found = self._memo.get(id(node))
        if found is None:
            found = self._evaluate(node)
            self._memo[id(node)] = found
        return found

    def _evaluate(self, node: Expr) -> list[_State]:
        if isinstance(node, Leaf):
            return [(self.bits.get(node.model, 0), node.model)]
        kept: list[_State] = []
        if isinstance(node, Or):
            for child in node.children:
                for state in self.states(child):
                    _keep_if_new(kept, state)
            return kept
        if isinstance(node, And):
            return self._product(node)
        message = f"a compiled MatrixProgram has no references left, got {node!r}"
        raise TypeError(message)

    def _product(self, node: And) -> list[_State]:
        # Left-major loops keep the alternatives in expansion order, which the tie-break needs.
        combined: list[_State] = [(0, None)]
        for child in node.children:
            right = self.states(child)
            step: list[_State] = []
            for left_mask, left_witness in combined:
                for right_mask, right_witness in right:
                    _keep_if_new(step, (left_mask | right_mask, (left_witness, right_witness)))
            combined = step
        return combined


def _keep_if_new(kept: list[_State], state: _State) -> None:
    """Append `state` unless an earlier state allows every relevant model it allows.

    Such an earlier state is at least as cheap in every context (costs are >= 1) and comes
    first, so this one can never win. Unlike llama-swap, a later superset does not remove an
    earlier subset: with other choices the two can end up equal, and then the earlier wins the
    tie (llama-swap would move it behind choices that came between).
    """
    mask = state[0]
    if any(earlier | mask == earlier for earlier, _ in kept):
        return
    kept.append(state)


def _flatten(witness: Witness) -> frozenset[str]:
    models: set[str] = set()
    pending = [witness]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            models.add(item)
        elif item is not None:
            pending.extend(item)
    return frozenset(models)


def _evict_cost(
    program: MatrixProgram, projection: _Projection, running: Sequence[str], mask: int
) -> int:
    return sum(program.cost_of(m) for m in running if not mask & projection.bits[m])


def solve(program: MatrixProgram, target: str, running: Iterable[str]) -> MatrixDecision:
    """The cheapest way to run `target` next to `running` (see the module docstring).

    A target that already runs evicts nothing (llama-swap forwards the request as it is).
    """
    others = tuple(dict.fromkeys(running))
    if target in others:
        return _already_running(program, others)
    projection = _Projection((target, *others))
    target_bit = projection.bits[target]
    best: tuple[int, MatrixSet, _State] | None = None
    for matrix_set in program.sets:
        if target not in matrix_set.support:
            continue
        for state in projection.states(matrix_set.root):
            if not state[0] & target_bit:
                continue
            cost = _evict_cost(program, projection, others, state[0])
            if best is None or cost < best[0]:
                best = (cost, matrix_set, state)
        if best is not None and best[0] == 0:
            break  # nothing later can be cheaper, and ties go to the earlier set
    if best is None:
        total = sum(program.cost_of(m) for m in others)
        return MatrixDecision(None, frozenset({target}), tuple(sorted(others)), total)
    cost, matrix_set, (mask, witness) = best
    evict = tuple(sorted(m for m in others if not mask & projection.bits[m]))
    return MatrixDecision(matrix_set.name, _flatten(witness), evict, cost)


def _already_running(program: MatrixProgram, running: tuple[str, ...]) -> MatrixDecision:
    """No evictions; the set named is the first one that allows everything that runs."""
    projection = _Projection(running)
    required = projection.mask_of(running)
    for matrix_set in program.sets:
        if not matrix_set.support.issuperset(running):
            continue
        if any(mask & required == required for mask, _ in projection.states(matrix_set.root)):
            return MatrixDecision(matrix_set.name, frozenset(running), (), 0)
    return MatrixDecision(None, frozenset(running), (), 0)


class MatrixPolicy:
    """The matrix solver as the scheduler asks it: which running models a target evicts."""

    def __init__(self, program: MatrixProgram) -> None:
        self.program = program

    def decide(self, target: str, running: Iterable[str]) -> MatrixDecision:
        """The whole decision (set, alternative, cost), for the swap log line."""
        return solve(self.program, target, running)

    def evictions_for(self, target: str, running: Iterable[str]) -> tuple[str, ...]:
        """The running models to stop before `target` starts, sorted."""
        return solve(self.program, target, running).evict
