"""Rule checks run before compiling: every problem at its rule path, plus shadowing warnings.

Stdlib only. Errors make compile_rules raise RuleError; warnings ride along on the Router.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from swapgate.router.errors import RuleIssue, key_path
from swapgate.router.rules import ExactText, Match, PrefixText, RegexText, Rule, TextMatcher

# Long model lists make a message unreadable; the rest is summarised as a count.
_MAX_LISTED_MODELS = 20

Constraint = tuple[str, ...]


def display_names(rules: Sequence[Rule], paths: Sequence[str]) -> list[str]:
    """The name each rule shows in stats and headers: its own, else its path (`routes[i]`)."""
    return [
        rule.name if rule.name is not None else path
        for rule, path in zip(rules, paths, strict=True)
    ]


def check_rules(
    rules: Sequence[Rule], names: Mapping[str, str], paths: Sequence[str]
) -> tuple[list[RuleIssue], list[RuleIssue]]:
    """All (errors, warnings) for `rules`, in rule order."""
    errors: list[RuleIssue] = []
    warnings: list[RuleIssue] = []
    name_issues = _name_issues(rules, paths)
    last = len(rules) - 1
    for index, (rule, path) in enumerate(zip(rules, paths, strict=True)):
        errors.extend(name_issues.get(index, ()))
        _check_match(rule.match, path, errors)
        if rule.match.is_empty() and index != last:
            errors.append(
                RuleIssue(
                    f"{path}.match",
                    "must constrain model, headers or path unless it is the last rule",
                )
            )
        _check_target(rule, names, path, errors, warnings)
    warnings.extend(_shadowed(rules, paths))
    return errors, warnings


def _name_issues(rules: Sequence[Rule], paths: Sequence[str]) -> dict[int, list[RuleIssue]]:
    """Name problems by rule index, so they can be reported in rule order."""
    found: dict[int, list[RuleIssue]] = {}
    first_seen: dict[str, str] = {}
    shown_names = display_names(rules, paths)
    for index, (rule, path, shown) in enumerate(zip(rules, paths, shown_names, strict=True)):
        name_path = f"{path}.name" if rule.name is not None else path
        issues = found.setdefault(index, [])
        if rule.name == "":
            issues.append(RuleIssue(name_path, "must be a non-empty string"))
        elif "/" in shown:
            # "rule/variant" labels are split on the first "/", so names cannot hold one.
            issues.append(RuleIssue(name_path, f'must not contain "/", got "{shown}"'))
        if shown in first_seen:
            issues.append(RuleIssue(name_path, f'"{shown}" already used by {first_seen[shown]}'))
        else:
            first_seen[shown] = name_path
    return found


def _check_match(match: Match, path: str, errors: list[RuleIssue]) -> None:
    base = f"{path}.match"
    if match.model is not None:
        _check_text(match.model, f"{base}.model", errors)
    for name, matcher in match.headers:
        header_path = key_path(f"{base}.headers", name)
        if not name:
            errors.append(RuleIssue(header_path, "header name must not be empty"))
        _check_text(matcher, header_path, errors)
    if match.path is not None:
        _check_text(match.path, f"{base}.path", errors)


def _check_text(matcher: TextMatcher, path: str, errors: list[RuleIssue]) -> None:
    if not isinstance(matcher, RegexText):
        return
    try:
        re.compile(matcher.pattern)
    except re.error as exc:
        errors.append(RuleIssue(f"{path}.regex", f"invalid regex: {exc.msg} at position {exc.pos}"))


def _check_target(
    rule: Rule,
    names: Mapping[str, str],
    path: str,
    errors: list[RuleIssue],
    warnings: list[RuleIssue],
) -> None:
    if rule.to is not None and rule.split:
        errors.append(RuleIssue(path, 'must have exactly one of "to" or "split", got both'))
    elif rule.to is None and not rule.split:
        errors.append(RuleIssue(path, 'must have exactly one of "to" or "split", got neither'))
    if rule.to is not None:
        _check_model(rule.to, names, f"{path}.to", errors)
    if rule.split:
        _check_split(rule, names, path, errors)
    if rule.sticky is not None and not rule.sticky.key:
        errors.append(RuleIssue(f"{path}.sticky", "must name a header or body field"))
    elif rule.sticky is not None and not rule.split:
        warnings.append(
            RuleIssue(f"{path}.sticky", "ignored: only a split uses it — remove it or use split")
        )


def _check_split(rule: Rule, names: Mapping[str, str], path: str, errors: list[RuleIssue]) -> None:
    first_seen: dict[str, str] = {}
    for index, arm in enumerate(rule.split):
        arm_path = f"{path}.split[{index}]"
        _check_model(arm.to, names, f"{arm_path}.to", errors)
        if arm.to in first_seen:
            errors.append(
                RuleIssue(f"{arm_path}.to", f'"{arm.to}" already used by {first_seen[arm.to]}')
            )
        else:
            first_seen[arm.to] = f"{arm_path}.to"
        if arm.weight < 0:
            errors.append(RuleIssue(f"{arm_path}.weight", f"must be >= 0, got {arm.weight}"))
    if not any(arm.weight > 0 for arm in rule.split):
        errors.append(RuleIssue(f"{path}.split", "weights must include at least one > 0"))


def _check_model(name: str, names: Mapping[str, str], path: str, errors: list[RuleIssue]) -> None:
    if name in names:
        return
    known = sorted(names)
    listed = ", ".join(known[:_MAX_LISTED_MODELS])
    if len(known) > _MAX_LISTED_MODELS:
        listed += f", … ({len(known) - _MAX_LISTED_MODELS} more)"
    errors.append(RuleIssue(path, f'unknown model "{name}"; known models: {listed or "(none)"}'))


def _shadowed(rules: Sequence[Rule], paths: Sequence[str]) -> list[RuleIssue]:
    """Warnings for rules that an earlier, less specific rule always catches first.

    Rule j can never match when every condition of an earlier rule i also appears in j: any
    request j accepts, i accepts first. Only identical conditions are compared, so this never
    warns wrongly; it may miss overlaps such as a regex that covers an exact value.
    """
    warnings: list[RuleIssue] = []
    last = len(rules) - 1
    shown = display_names(rules, paths)
    constraints = [_constraints(rule.match) for rule in rules]
    for later in range(1, len(rules)):
        for earlier in range(later):
            if rules[earlier].match.is_empty() and earlier != last:
                continue  # already an error of its own; do not repeat it for every later rule
            if constraints[earlier] <= constraints[later]:
                warnings.append(
                    RuleIssue(
                        f"{paths[later]}.match",
                        f'never matches: shadowed by {paths[earlier]} "{shown[earlier]}"'
                        f" — move it above {paths[earlier]} or remove it",
                    )
                )
                break
    return warnings


def _constraints(match: Match) -> frozenset[Constraint]:
    found: set[Constraint] = set()
    if match.model is not None:
        found.add(("model", *_text_key(match.model)))
    for name, matcher in match.headers:
        found.add(("header", name.lower(), *_text_key(matcher)))
    if match.path is not None:
        found.add(("path", *_text_key(match.path)))
    # An empty prefix accepts every value, so it constrains nothing.
    return frozenset(item for item in found if item[-2:] != ("prefix", ""))


def _text_key(matcher: TextMatcher) -> tuple[str, str]:
    match matcher:
        case ExactText(value):
            return ("exact", value)
        case RegexText(pattern):
            return ("regex", pattern)
        case PrefixText(prefix):
            return ("prefix", prefix)
