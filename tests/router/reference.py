"""A deliberately naive rule interpreter: the oracle for the router's property tests.

It re-reads the rule specs for every request, uses `re.fullmatch` on pattern strings, scans
headers and weights linearly and shares no code with `router` beyond the spec and result
types, so an indexing or bisecting bug in the compiled router shows up as a disagreement.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence

from swapgate.router import (
    Decision,
    ExactText,
    Match,
    PrefixText,
    RegexText,
    RequestFacts,
    Rule,
    Sticky,
    StickySource,
    TextMatcher,
)


def reference_match(
    rules: Sequence[Rule],
    names: Mapping[str, str],
    facts: RequestFacts,
    random: Callable[[], float],
    rewrite_default: bool = False,
) -> Decision | None:
    """The decision the rules describe, computed the slow and obvious way."""
    for index, rule in enumerate(rules):
        if not _matches(rule.match, facts):
            continue
        name = rule.name if rule.name is not None else f"routes[{index}]"
        if rule.to is not None:
            return Decision(names[rule.to], name, None, rule.rewrite_response_model)
        arm = _choose_arm(rule, facts, random)
        return Decision(names[arm], name, arm, rule.rewrite_response_model)
    if facts.model in names:
        return Decision(names[facts.model], None, None, rewrite_default)
    return None


def _matches(match: Match, facts: RequestFacts) -> bool:
    if match.model is not None and not _text(match.model, facts.model):
        return False
    if match.path is not None and not _text(match.path, facts.path):
        return False
    for wanted, matcher in match.headers:
        value = _header(facts, wanted)
        if value is None or not _text(matcher, value):
            return False
    return True


def _text(matcher: TextMatcher, value: str) -> bool:
    if isinstance(matcher, ExactText):
        return value == matcher.value
    if isinstance(matcher, RegexText):
        return re.fullmatch(matcher.pattern, value) is not None
    assert isinstance(matcher, PrefixText)
    return value[: len(matcher.prefix)] == matcher.prefix


def _header(facts: RequestFacts, wanted: str) -> str | None:
    for name, value in facts.headers.items():
        if name.lower() == wanted.lower():
            return value
    return None


def _choose_arm(rule: Rule, facts: RequestFacts, random: Callable[[], float]) -> str:
    total = sum(arm.weight for arm in rule.split)
    key = _sticky_key(rule.sticky, facts)
    if key:
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        point = int.from_bytes(digest, "big") % total
    else:
        point = min(int(random() * total), total - 1)
    for arm in rule.split:
        if point < arm.weight:
            return arm.to
        point -= arm.weight
    msg = "point beyond the total weight"
    raise AssertionError(msg)


def _sticky_key(sticky: Sticky | None, facts: RequestFacts) -> str | None:
    if sticky is None:
        return None
    if sticky.source is StickySource.HEADER:
        return _header(facts, sticky.key)
    value = (facts.body_fields or {}).get(sticky.key)
    if type(value) is str or type(value) is int:
        return str(value)
    return None
