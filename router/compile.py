"""compile_rules(rules, names) -> Router: check every rule, then build the matcher once.

Regexes are compiled, header names lower-cased, targets resolved to model ids, cumulative
weights summed and every Decision prebuilt here, so matching does no parsing or allocation
beyond the candidate lookup. Stdlib only.
"""

from __future__ import annotations

import random as _random
import re
from collections.abc import Callable, Mapping, Sequence

from swapgate.router.check import check_rules, display_names
from swapgate.router.errors import RuleError
from swapgate.router.index import ModelIndex
from swapgate.router.match import CompiledRule, Decision, Router, Split, TextTest
from swapgate.router.rules import (
    ExactText,
    PrefixText,
    RegexText,
    Rule,
    Sticky,
    StickySource,
    TextMatcher,
)
from swapgate.router.weighted import Picker


def compile_rules(
    rules: Sequence[Rule],
    names: Mapping[str, str],
    *,
    rewrite_default: bool = False,
    random: Callable[[], float] = _random.random,
    paths: Sequence[str] | None = None,
) -> Router:
    """Check and compile `rules` in declared order; raise RuleError listing every problem.

    `names` maps every model id and alias to its model id; requests no rule matches resolve
    through it (with `rewrite_default`). `random` drives splits without a sticky key.
    `paths` names each rule in messages and is its display name when unnamed (`routes[i]`).
    """
    rule_paths = list(paths) if paths is not None else [f"routes[{i}]" for i in range(len(rules))]
    errors, warnings = check_rules(rules, names, rule_paths)
    if errors:
        raise RuleError(errors, warnings)
    shown = display_names(rules, rule_paths)
    compiled = [_compile_rule(index, rule, shown[index], names) for index, rule in enumerate(rules)]
    by_exact: dict[str, list[CompiledRule]] = {}
    generic: list[CompiledRule] = []
    for rule, built in zip(rules, compiled, strict=True):
        if isinstance(rule.match.model, ExactText):
            by_exact.setdefault(rule.match.model.value, []).append(built)
        else:
            generic.append(built)
    fallback = {
        name: Decision(model_id, None, None, rewrite_default) for name, model_id in names.items()
    }
    patterns = {
        index: rule.match.model.pattern
        for index, rule in enumerate(rules)
        if isinstance(rule.match.model, RegexText)
    }
    index = ModelIndex({m: tuple(group) for m, group in by_exact.items()}, tuple(generic), patterns)
    return Router(
        rule_names=tuple(shown),
        index=index,
        fallback=fallback,
        random=random,
        warnings=tuple(warnings),
    )


def _compile_rule(index: int, rule: Rule, name: str, names: Mapping[str, str]) -> CompiledRule:
    match = rule.match
    model = match.model
    return CompiledRule(
        index=index,
        # Exact model names are resolved by the index, so only other kinds keep a test.
        model_test=None if model is None or isinstance(model, ExactText) else text_test(model),
        header_tests=tuple((header.lower(), text_test(m)) for header, m in match.headers),
        path_test=None if match.path is None else text_test(match.path),
        target=_target(rule, name, names),
        exact_headers={
            header.lower(): m.value for header, m in match.headers if isinstance(m, ExactText)
        },
    )


def _target(rule: Rule, name: str, names: Mapping[str, str]) -> Decision | Split:
    rewrite = rule.rewrite_response_model
    if rule.to is not None:
        return Decision(names[rule.to], name, None, rewrite)
    decisions = tuple(Decision(names[arm.to], name, arm.to, rewrite) for arm in rule.split)
    picker = Picker([arm.weight for arm in rule.split])
    sticky = rule.sticky
    if sticky is not None and sticky.source is StickySource.HEADER:
        # RequestFacts carries lower-cased header names; lower the key once here.
        sticky = Sticky(sticky.source, sticky.key.lower())
    return Split(picker, decisions, sticky)


def text_test(matcher: TextMatcher) -> TextTest:
    """A callable that is truthy for the values `matcher` accepts."""
    match matcher:
        case ExactText(value):
            return value.__eq__
        case RegexText(pattern):
            return re.compile(pattern).fullmatch
        case PrefixText(prefix):
            return _prefix_test(prefix)


def _prefix_test(prefix: str) -> TextTest:
    def test(value: str) -> bool:
        return value.startswith(prefix)

    return test
