"""Candidate lists per model name: the exact-name index, a regex prefilter and header blocks.

Stdlib only. For each model name, the rules whose model condition accepts it are found once
(then memoised) and arranged into steps: single rules, or header blocks where a run of
consecutive rules pins the same header to exact values and a dict lookup replaces the scan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from heapq import merge

from swapgate.router.facts import RequestFacts
from swapgate.router.match import CompiledRule, Decision, Step

# Distinct model names remembered with their steps. Clients use a handful of names; the
# bound only stops a stream of made-up names from growing memory without limit.
MEMO_LIMIT = 4096
# Shorter runs are cheaper to scan than to look up.
MIN_BLOCK = 4
# Group references change meaning when patterns are joined into one alternation.
_GROUP_REFERENCE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


class HeaderBlock:
    """Consecutive rules that all pin header `name` to exact values, keyed by that value."""

    __slots__ = ("by_value", "name")

    def __init__(self, name: str, by_value: Mapping[str, tuple[CompiledRule, ...]]) -> None:
        self.name = name
        self.by_value = by_value

    def find(self, facts: RequestFacts, random: Callable[[], float]) -> Decision | None:
        """The first rule of the block that accepts the request, in declared order."""
        value = facts.headers.get(self.name)
        if value is None:
            return None
        for rule in self.by_value.get(value, ()):
            decision = rule.find(facts, random)
            if decision is not None:
                return decision
        return None


class ModelIndex:
    """Maps a model name to the steps that can match it, in declared rule order."""

    __slots__ = ("_by_exact", "_generic", "_memo", "_prefilter", "_unfiltered")

    def __init__(
        self,
        by_exact: Mapping[str, tuple[CompiledRule, ...]],
        generic: tuple[CompiledRule, ...],
        model_patterns: Mapping[int, str],
    ) -> None:
        """`generic`: rules without an exact model name; `model_patterns`: their regexes."""
        self._by_exact = by_exact
        self._generic = generic
        self._prefilter = _prefilter(list(model_patterns.values()))
        covered = model_patterns if self._prefilter is not None else {}
        self._unfiltered = tuple(rule for rule in generic if rule.index not in covered)
        self._memo: dict[str, tuple[Step, ...]] = {}

    def steps(self, model: str) -> tuple[Step, ...]:
        """The memoised steps for `model`."""
        found = self._memo.get(model)
        if found is None:
            found = self._build(model)
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[model] = found
        return found

    def _build(self, model: str) -> tuple[Step, ...]:
        # When no model regex can match, only the rules it does not cover need testing.
        pool = self._generic
        if self._prefilter is not None and self._prefilter(model) is None:
            pool = self._unfiltered
        generic = [r for r in pool if r.model_test is None or r.model_test(model)]
        exact = self._by_exact.get(model, ())
        rules = list(merge(exact, generic, key=_rule_index)) if exact and generic else None
        return plan(rules if rules is not None else (exact or generic))


def plan(rules: Sequence[CompiledRule]) -> tuple[Step, ...]:
    """Group runs of at least MIN_BLOCK rules sharing an exact header into HeaderBlocks."""
    steps: list[Step] = []
    start = 0
    while start < len(rules):
        name, end = _longest_run(rules, start)
        if name is not None and end - start >= MIN_BLOCK:
            by_value: dict[str, list[CompiledRule]] = {}
            for rule in rules[start:end]:
                by_value.setdefault(rule.exact_headers[name], []).append(rule)
            steps.append(HeaderBlock(name, {v: tuple(rs) for v, rs in by_value.items()}))
            start = end
        else:
            steps.append(rules[start])
            start += 1
    return tuple(steps)


def _longest_run(rules: Sequence[CompiledRule], start: int) -> tuple[str | None, int]:
    """The exact header of rules[start] that the most following rules also pin, and run end."""
    best, best_end = None, start + 1
    for name in rules[start].exact_headers:
        end = start + 1
        while end < len(rules) and name in rules[end].exact_headers:
            end += 1
        if end > best_end:
            best, best_end = name, end
    return best, best_end


def _prefilter(patterns: list[str]) -> Callable[[str], object] | None:
    """One alternation of every model regex: no match means none of them matches.

    Not built when a pattern refers to a group by number or name (joining would renumber
    it) or when the joined pattern does not compile (e.g. a global flag such as `(?i)`).
    """
    if not patterns or any(_GROUP_REFERENCE.search(p) for p in patterns):
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns)).fullmatch
    except re.error:
        return None


def _rule_index(rule: CompiledRule) -> int:
    return rule.index
