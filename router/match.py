"""The compiled router: Router.match(facts) -> Decision | None. Stdlib only, no I/O.

Rules are tried in declared order and the first that accepts the request wins. The model
condition is resolved once per model name into a candidate list (exact-name index merged with
the rules that do not pin an exact name), so a request only runs the header and path checks
of rules that could apply to its model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from swapgate.router.errors import RuleIssue
from swapgate.router.facts import RequestFacts
from swapgate.router.rules import Sticky, StickySource
from swapgate.router.weighted import Picker

# Truthy when a value satisfies a condition: str.__eq__, Pattern.fullmatch, a prefix test.
TextTest = Callable[[str], object]


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request goes: the resolved model id and which rule and variant chose it.

    `rule` is None when no rule matched and the model name was resolved as an id or alias.
    `arm` is the split variant's `to` as written, None for a plain `to` rule.
    """

    model_id: str
    rule: str | None
    arm: str | None
    rewrite_response_model: bool


class Split:
    """A weighted split: the picker plus one prebuilt decision per variant."""

    __slots__ = ("decisions", "picker", "sticky")

    def __init__(
        self, picker: Picker, decisions: tuple[Decision, ...], sticky: Sticky | None
    ) -> None:
        self.picker = picker
        self.decisions = decisions
        self.sticky = sticky

    def decide(self, facts: RequestFacts, random: Callable[[], float]) -> Decision:
        """The sticky variant when the request carries a key, else a weighted random one."""
        key = _sticky_key(self.sticky, facts)
        index = self.picker.pick_sticky(key) if key else self.picker.pick_random(random)
        return self.decisions[index]


class CompiledRule:
    """One rule ready to test: conditions as precompiled callables, decisions prebuilt.

    `model_test` is None when the rule has no model condition or pins an exact name (those
    rules are found through the exact-name index instead).
    """

    __slots__ = (
        "exact_headers",
        "header_tests",
        "index",
        "model_test",
        "path_test",
        "target",
        "unconditional",
    )

    def __init__(
        self,
        *,
        index: int,
        model_test: TextTest | None,
        header_tests: tuple[tuple[str, TextTest], ...],
        path_test: TextTest | None,
        target: Decision | Split,
        exact_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.index = index
        self.exact_headers = exact_headers or {}
        self.model_test = model_test
        self.header_tests = header_tests
        self.path_test = path_test
        self.unconditional = path_test is None and not header_tests
        self.target = target

    def accepts(self, facts: RequestFacts) -> bool:
        """True when the path and header conditions hold (the model was checked already)."""
        if self.path_test is not None and not self.path_test(facts.path):
            return False
        headers = facts.headers
        for name, test in self.header_tests:
            value = headers.get(name)
            if value is None or not test(value):
                return False
        return True

    def find(self, facts: RequestFacts, random: Callable[[], float]) -> Decision | None:
        """The decision when this rule accepts the request (model already checked), else None."""
        if self.unconditional or self.accepts(facts):
            return self.decide(facts, random)
        return None

    def decide(self, facts: RequestFacts, random: Callable[[], float]) -> Decision:
        """The decision for an accepted request."""
        target = self.target
        if isinstance(target, Decision):
            return target
        return target.decide(facts, random)


def _sticky_key(sticky: Sticky | None, facts: RequestFacts) -> str | None:
    """The client's sticky key, or None (then the split is weighted random)."""
    if sticky is None:
        return None
    if sticky.source is StickySource.HEADER:
        return facts.headers.get(sticky.key)
    value = None if facts.body_fields is None else facts.body_fields.get(sticky.key)
    # Only strings and integers identify a client; bool is an int but never an identity.
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value)
    return None


class Step(Protocol):
    """One entry of a candidate list: a rule, or a block of rules found by header value."""

    def find(self, facts: RequestFacts, random: Callable[[], float]) -> Decision | None:
        """The decision of the first accepting rule in this step, else None."""


class Candidates(Protocol):
    """Gives the steps to try for a model name (router.index.ModelIndex)."""

    def steps(self, model: str) -> tuple[Step, ...]:
        """Steps in declared rule order."""


class Router:
    """Immutable compiled rules plus the id/alias fallback; build it with compile_rules()."""

    __slots__ = ("_fallback", "_index", "_random", "rule_names", "warnings")

    def __init__(
        self,
        *,
        rule_names: tuple[str, ...],
        index: Candidates,
        fallback: Mapping[str, Decision],
        random: Callable[[], float],
        warnings: tuple[RuleIssue, ...] = (),
    ) -> None:
        self.rule_names = rule_names
        self._index = index
        self._fallback = fallback
        self._random = random
        self.warnings = warnings

    def match(self, facts: RequestFacts) -> Decision | None:
        """The first matching rule's decision, else the model id/alias, else None."""
        random = self._random
        for step in self._index.steps(facts.model):
            decision = step.find(facts, random)
            if decision is not None:
                return decision
        return self._fallback.get(facts.model)

    def label(self, decision: Decision) -> str | None:
        """`rule` or `rule/variant` for the x-swapgate-route header; None without a rule."""
        if decision.rule is None or decision.arm is None:
            return decision.rule
        return f"{decision.rule}/{decision.arm}"
