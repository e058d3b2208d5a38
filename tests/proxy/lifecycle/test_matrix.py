"""The matrix solver: cheapest set, ties in definition order, checked against brute force."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swapgate.proxy.config.issues import Collector
from swapgate.proxy.config.matrix import MatrixProgram, read_matrix
from swapgate.proxy.lifecycle.matrix import MatrixDecision, MatrixPolicy, solve

UNIVERSE = {
    *("a", "b", "c", "d", "t", "r1", "r2", "lonely"),
    *("gemma", "qwen", "mistral", "voxtral", "reranker", "llama70B"),
    *("gemma-model", "qwen-model", "mistral-model", "voxtral-model", "reranker-model"),
    *("stable-diffusion", "llama-70B"),
}
SPEECH = {"g": "gemma", "q": "qwen", "m": "mistral", "v": "voxtral", "e": "reranker"}


def _compile(
    sets: Mapping[str, str],
    costs: Mapping[str, int] | None = None,
    variables: Mapping[str, str] | None = None,
    models: set[str] | None = None,
) -> MatrixProgram:
    """A program read through the real config reader; fails the test on any issue."""
    raw = {"vars": dict(variables or {}), "evict_costs": dict(costs or {}), "sets": dict(sets)}
    out = Collector()
    program = read_matrix(raw, ("matrix",), UNIVERSE if models is None else models, out)
    assert out.errors == []
    assert program is not None
    return program


@dataclass(frozen=True)
class Case:
    """One solve() call and the decision it must return."""

    name: str
    sets: Mapping[str, str]
    target: str
    running: tuple[str, ...]
    set_name: str | None
    keep: frozenset[str]
    evict: tuple[str, ...] = ()
    cost: int = 0
    costs: Mapping[str, int] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)


def _k(*models: str) -> frozenset[str]:
    return frozenset(models)


BASIC_SETS = {"standard": "(g | q | m) & v", "full": "L"}
BASIC_VARS = {**SPEECH, "L": "llama70B"}
BASIC_COSTS = {"L": 30, "v": 50}
REF_SETS = {"llms": "g | q | m", "with_tts": "+llms & v", "mega": "+with_tts & e"}
EXAMPLE_SETS = {  # llama-swap's config.example.yaml
    "standard": "(g | qwen-model | m) & v",
    "with_rerank": "(g | q) & v & e",
    "creative": "(g | q) & stable-diffusion",
    "full": "llama-70B",
}
EXAMPLE_VARS = {k: f"{v}-model" for k, v in SPEECH.items()}
EXAMPLE_COSTS = {"v": 50, "llama-70B": 30}

# One case per line: a table reads better than the formatter's one field per line.
# fmt: off
CASES = [
    # llama-swap internal/config/matrix_test.go
    Case("joins a running tts", BASIC_SETS, "gemma", ("voxtral",), "standard", _k("gemma", "voxtral"), costs=BASIC_COSTS, variables=BASIC_VARS),
    Case("full set evicts tts", BASIC_SETS, "llama70B", ("voxtral",), "full", _k("llama70B"), ("voxtral",), 50, BASIC_COSTS, BASIC_VARS),
    Case("reference chain", REF_SETS, "reranker", ("gemma", "voxtral"), "mega", _k("gemma", "reranker", "voxtral"), variables=SPEECH),
    Case("mixed vars and ids", {"base": "g | qwen", "combo": "+base & voxtral"}, "qwen", ("voxtral",), "combo", _k("qwen", "voxtral"), variables={"g": "gemma"}),
    Case("duplicate after resolution", {"combo": "g & gemma"}, "gemma", (), "combo", _k("gemma"), variables={"g": "gemma"}),
    Case("var shadows a model id", {"combo": "qwen"}, "gemma", (), "combo", _k("gemma"), variables={"qwen": "gemma"}),
    # llama-swap internal/router/matrix_test.go
    Case("tie goes to the first set", {"first": "a & b", "second": "a & c"}, "a", (), "first", _k("a", "b")),
    Case("costs keep the expensive model", {"a_with_c": "a & c", "a_with_b": "a & b"}, "a", ("b", "c"), "a_with_b", _k("a", "b"), ("c",), 1, {"b": 10, "c": 1}),
    Case("conflicting model is evicted", {"s_a": "a", "s_b": "b"}, "b", ("a",), "s_b", _k("b"), ("a",), 1),
    Case("models in one set coexist", {"s_ab": "a & b"}, "b", ("a",), "s_ab", _k("a", "b")),
    # llama-swap internal/matrix/dsl_test.go
    Case("overlapping references", {"base": "a & b", "extended": "t & +base & b"}, "t", ("a", "b"), "extended", _k("a", "b", "t")),
    Case("dominated projection", {"preferred": "t & (a | (a & b))"}, "t", ("a", "b"), "preferred", _k("a", "b", "t")),
    Case("target in no set runs alone", {"known": "a & b"}, "lonely", ("a", "b"), None, _k("lonely"), ("a", "b"), 2),
    # llama-swap config.example.yaml
    Case("example: reranker joins", EXAMPLE_SETS, "reranker-model", ("gemma-model", "voxtral-model"), "with_rerank", _k("gemma-model", "voxtral-model", "reranker-model"), costs=EXAMPLE_COSTS, variables=EXAMPLE_VARS),
    Case("example: creative drops tts", EXAMPLE_SETS, "stable-diffusion", ("qwen-model", "voxtral-model"), "creative", _k("qwen-model", "stable-diffusion"), ("voxtral-model",), 50, EXAMPLE_COSTS, EXAMPLE_VARS),
    Case("example: keeps costly tts", EXAMPLE_SETS, "mistral-model", ("qwen-model", "reranker-model", "voxtral-model"), "standard", _k("mistral-model", "voxtral-model"), ("qwen-model", "reranker-model"), 2, EXAMPLE_COSTS, EXAMPLE_VARS),
    Case("example: 70B runs alone", EXAMPLE_SETS, "llama-70B", ("gemma-model", "voxtral-model"), "full", _k("llama-70B"), ("gemma-model", "voxtral-model"), 51, EXAMPLE_COSTS, EXAMPLE_VARS),
    # swapgate's own
    Case("a subset of a set is allowed", {"trio": "a & b & c"}, "b", ("a",), "trio", _k("a", "b", "c")),
    Case("unconfigured running model goes", {"s": "a & b"}, "a", ("b", "ghost"), "s", _k("a", "b"), ("ghost",), 1),
    Case("ties go left to right in a set", {"s": "t & a | t & b"}, "t", ("b", "a"), "s", _k("a", "t"), ("b",), 1),
    Case("& binds tighter than |", {"s": "a | b & c"}, "b", ("a", "c"), "s", _k("b", "c"), ("a",), 1),
    Case("parentheses group alternatives", {"s": "(a | b) & c"}, "b", ("a", "c"), "s", _k("b", "c"), ("a",), 1),
    Case("cheaper later set wins", {"s1": "a & b", "s2": "a & c & d"}, "a", ("c", "d"), "s2", _k("a", "c", "d")),
    Case("referenced set is earlier in ties", {"big": "+small & c", "small": "a & b"}, "a", (), "small", _k("a", "b")),
    Case("expansion order, not frontier order", {"s": "(t | r2 | t & r1) & (r1 | t)"}, "t", ("r1", "r2"), "s", _k("t", "r1"), ("r2",), 1),
    Case("running target evicts nothing", {"s": "a & b"}, "a", ("a", "b"), "s", _k("a", "b")),
    Case("running target outside sets", {"s": "a & b"}, "a", ("a", "lonely"), None, _k("a", "lonely")),
    Case("duplicate running entries", {"s": "a"}, "b", ("a", "a"), None, _k("b"), ("a",), 1),
    Case("nothing running", {"s": "a | b"}, "b", (), "s", _k("b")),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_solve_cases(case: Case) -> None:
    """Each case returns the set, alternative, evictions and cost llama-swap's rules give."""
    program = _compile(case.sets, case.costs, case.variables)
    expected = MatrixDecision(case.set_name, case.keep, case.evict, case.cost)
    assert solve(program, case.target, case.running) == expected


def test_product_is_never_expanded() -> None:
    """Six dimensions of ten choices (a million combinations) solve by projection."""
    groups = [" | ".join(f"model-{d}-{c}" for c in range(10)) for d in range(6)]
    models = {"target", "outside", *(f"model-{d}-{c}" for d in range(6) for c in range(10))}
    program = _compile({"large": "target & " + " & ".join(f"({g})" for g in groups)}, models=models)
    running = (*(f"model-{d}-9" for d in range(6)), "outside")
    decision = solve(program, "target", running)
    assert (decision.set_name, decision.evict) == ("large", ("outside",))
    assert len(decision.keep) == 7


def test_huge_product_with_few_running_models() -> None:
    """Twelve dimensions of ten choices (10**12 combinations) still solve at once."""
    models = {"t", *(f"x{d}-{c}" for d in range(12) for c in range(10))}
    groups = [" | ".join(f"x{d}-{c}" for c in range(10)) for d in range(12)]
    program = _compile({"s": "t & " + " & ".join(f"({g})" for g in groups)}, models=models)
    decision = solve(program, "t", ("x0-3", "x0-4", "x11-9"))
    assert (decision.evict, decision.cost) == (("x0-4",), 1)


def test_more_than_64_relevant_models() -> None:
    """Masks are not limited to one machine word."""
    models = ["target", *(f"model-{i}" for i in range(70))]
    program = _compile({"wide": " & ".join(models)}, models={*models, "outside"})
    decision = solve(program, "target", (*models[1:], "outside"))
    assert decision.evict == ("outside",)
    assert len(decision.keep) == 71


def test_policy_answers_evictions() -> None:
    """MatrixPolicy gives solve()'s evictions, from any iterable, as a sorted tuple."""
    policy = MatrixPolicy(_compile(BASIC_SETS, BASIC_COSTS, BASIC_VARS))
    running = (m for m in ["voxtral", "gemma"])
    assert policy.evictions_for("llama70B", running) == ("gemma", "voxtral")
    assert policy.decide("qwen", ["gemma", "voxtral"]).evict == ("gemma",)


# Property: solve() equals a brute force that expands every alternative in order.
Tree = str | tuple[str, tuple["Tree", ...]]
IN_SETS = ["m0", "m1", "m2", "m3", "m4"]
ALL_MODELS = {*IN_SETS, "m5"}  # m5 is configured but in no set


def _render(tree: Tree, parent: str = "|") -> str:
    """The expression text, with parentheses only where & would otherwise bind first."""
    if isinstance(tree, str):
        return tree
    op, children = tree
    text = f" {op} ".join(_render(child, op) for child in children)
    return f"({text})" if op == "|" and parent == "&" else text


def _alternatives(tree: Tree) -> list[frozenset[str]]:
    """Every alternative of `tree`, left to right, with no pruning at all."""
    if isinstance(tree, str):
        return [frozenset({tree})]
    op, children = tree
    if op == "|":
        return [alt for child in children for alt in _alternatives(child)]
    result = [frozenset[str]()]
    for child in children:
        result = [left | right for left in result for right in _alternatives(child)]
    return result


def _brute_force(
    sets: list[Tree], costs: Mapping[str, int], target: str, running: list[str]
) -> MatrixDecision:
    """The decision by definition: the first cheapest alternative containing the target."""
    others = list(dict.fromkeys(running))
    expanded = [(f"s{i}", _alternatives(tree)) for i, tree in enumerate(sets)]
    if target in others:
        found = (n for n, alts in expanded if any(alt >= set(others) for alt in alts))
        return MatrixDecision(next(found, None), frozenset(others), (), 0)
    best: tuple[int, str, frozenset[str]] | None = None
    for name, alts in expanded:
        for alt in (a for a in alts if target in a):
            cost = sum(costs.get(m, 1) for m in others if m not in alt)
            if best is None or cost < best[0]:
                best = (cost, name, alt)
    if best is None:
        total = sum(costs.get(m, 1) for m in others)
        return MatrixDecision(None, frozenset({target}), tuple(sorted(others)), total)
    cost, name, alt = best
    return MatrixDecision(name, alt, tuple(sorted(m for m in others if m not in alt)), cost)


def _extend(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    return st.tuples(
        st.sampled_from(["&", "|"]), st.lists(children, min_size=2, max_size=3).map(tuple)
    )


TREES: st.SearchStrategy[Tree] = st.recursive(st.sampled_from(IN_SETS), _extend, max_leaves=7)


@settings(max_examples=300, deadline=None)
@given(
    sets=st.lists(TREES, min_size=1, max_size=4),
    costs=st.dictionaries(st.sampled_from(sorted(ALL_MODELS)), st.integers(1, 4)),
    target=st.sampled_from(sorted(ALL_MODELS)),
    running=st.lists(st.sampled_from([*sorted(ALL_MODELS), "ghost"]), max_size=6),
)
def test_solve_equals_brute_force(
    sets: list[Tree], costs: dict[str, int], target: str, running: list[str]
) -> None:
    """For random small programs of & and |, solve() decides exactly as full expansion does."""
    program = _compile(
        {f"s{i}": _render(tree) for i, tree in enumerate(sets)}, costs, models=ALL_MODELS
    )
    assert solve(program, target, running) == _brute_force(sets, costs, target, running)
