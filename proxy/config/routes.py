"""The `routes` section: raw YAML data -> router rule specs, with every problem at its path.

Pure and stdlib-only apart from `router` and `proxy.errors`; it never imports yaml. This module
checks shapes and types; the router's own checks (regexes, targets, names, weights, shadowing)
run through `compile_rules`, so each rule problem is detected in exactly one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from swapgate.proxy.config.hints import closest_key
from swapgate.proxy.config.issues import describe
from swapgate.proxy.errors import Issue
from swapgate.router import (
    Arm,
    ExactText,
    Match,
    PrefixText,
    RegexText,
    Rule,
    RuleError,
    Sticky,
    StickySource,
    TextMatcher,
    compile_rules,
    key_path,
)

RULE_KEYS = ("name", "match", "to", "split", "sticky", "rewriteResponseModel")
MATCH_KEYS = ("model", "headers", "path")
ARM_KEYS = ("to", "weight")
STICKY_FORM = 'must be "header:<name>" or "body:<field>"'


def parse_routes(
    raw: object, names: Mapping[str, str], rewrite_default: bool
) -> tuple[list[Rule], list[Issue], list[Issue]]:
    """(rules, errors, warnings) for the raw `routes` value; rules are usable only without errors.

    `names` maps every model id and alias to its model id. A rule with a shape problem is left
    out of the returned list; the others are still checked by the router under their own paths.
    """
    parser = _Parser()
    if raw is None:
        return [], [], []
    if not isinstance(raw, list):
        parser.error("routes", f"expected list, got {describe(raw)}")
        return [], parser.errors, parser.warnings
    rules: list[Rule] = []
    paths: list[str] = []
    for index, item in enumerate(raw):
        path = f"routes[{index}]"
        rule = parser.rule(item, path, rewrite_default)
        if rule is not None:
            rules.append(rule)
            paths.append(path)
    try:
        router = compile_rules(rules, names, paths=paths)
    except RuleError as exc:
        parser.errors.extend(Issue(i.path, i.message) for i in exc.issues)
        parser.warnings.extend(Issue(i.path, i.message) for i in exc.warnings)
    else:
        parser.warnings.extend(Issue(i.path, i.message) for i in router.warnings)
    return rules, parser.errors, parser.warnings


class _Parser:
    """Walks one routes list; each method returns a spec or None after recording the issue."""

    def __init__(self) -> None:
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(Issue(path, message))

    def rule(self, item: object, path: str, rewrite_default: bool) -> Rule | None:
        """One rule, or None when its shape is wrong (the problems are recorded)."""
        before = len(self.errors)
        fields = self._mapping(item, path, RULE_KEYS)
        if fields is None:
            return None
        name = self._optional_str(fields, "name", path)
        match = self._match(fields.get("match"), f"{path}.match")
        to = self._optional_str(fields, "to", path)
        split = self._split(fields["split"], f"{path}.split") if "split" in fields else ()
        sticky = self._sticky(fields.get("sticky"), f"{path}.sticky")
        rewrite = fields.get("rewriteResponseModel", rewrite_default)
        if not isinstance(rewrite, bool):
            self.error(f"{path}.rewriteResponseModel", f"expected bool, got {describe(rewrite)}")
        if len(self.errors) > before or match is None or split is None:
            return None
        return Rule(
            name=name,
            match=match,
            to=to,
            split=split,
            sticky=sticky,
            rewrite_response_model=bool(rewrite),
        )

    def _mapping(
        self, value: object, path: str, known: tuple[str, ...]
    ) -> dict[str, object] | None:
        """`value` as a str-keyed dict, warning on unknown keys; None (recorded) otherwise."""
        if not isinstance(value, dict):
            self.error(path, f"expected mapping, got {describe(value)}")
            return None
        fields: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.error(path, f"expected string keys, got {describe(key)}")
                continue
            if key not in known:
                self.warnings.append(Issue(key_path(path, key), _unknown_key(key, known)))
                continue
            fields[key] = item
        return fields

    def _optional_str(self, fields: Mapping[str, object], key: str, path: str) -> str | None:
        value = fields.get(key)
        if value is None or isinstance(value, str):
            return value
        self.error(f"{path}.{key}", f"expected string, got {describe(value)}")
        return None

    def _match(self, value: object, path: str) -> Match | None:
        if value is None:
            return Match()  # `match:` with nothing after it reads as null: the same as {}
        fields = self._mapping(value, path, MATCH_KEYS)
        if fields is None:
            return None
        model = self._text(fields.get("model"), f"{path}.model", ("regex",))
        path_matcher = self._text(fields.get("path"), f"{path}.path", ("prefix", "regex"))
        headers = self._headers(fields.get("headers"), f"{path}.headers")
        return Match(model=model, headers=headers, path=path_matcher)

    def _headers(self, value: object, path: str) -> tuple[tuple[str, TextMatcher], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.error(path, f"expected mapping, got {describe(value)}")
            return ()
        found: list[tuple[str, TextMatcher]] = []
        for name, raw in value.items():
            if not isinstance(name, str) or not name:
                self.error(path, f"expected header names, got {describe(name)}")
                continue
            matcher = self._text(raw, key_path(path, name), ("regex",))
            if matcher is not None:
                found.append((name, matcher))
        return tuple(found)

    def _text(self, value: object, path: str, kinds: tuple[str, ...]) -> TextMatcher | None:
        """A string is an exact match; `{kind: text}` picks one of `kinds`."""
        if value is None:
            return None
        if isinstance(value, str):
            return ExactText(value)
        forms = " or ".join(f"{{{kind}: ...}}" for kind in kinds)
        if not isinstance(value, dict):
            hint = f' — quote it: "{value}"' if isinstance(value, int | float) else ""
            self.error(path, f"expected string or {forms}, got {describe(value)}{hint}")
            return None
        if len(value) != 1:
            self.error(path, f"expected string or {forms}, got mapping with {len(value)} keys")
            return None
        ((kind, text),) = value.items()
        if kind not in kinds:
            self.error(path, f"must be one of: {', '.join(kinds)}; got {json.dumps(str(kind))}")
            return None
        if not isinstance(text, str):
            self.error(f"{path}.{kind}", f"expected string, got {describe(text)}")
            return None
        return RegexText(text) if kind == "regex" else PrefixText(text)

    def _split(self, value: object, path: str) -> tuple[Arm, ...] | None:
        if not isinstance(value, list):
            self.error(path, f"expected list, got {describe(value)}")
            return None
        if not value:
            self.error(path, "must have at least one variant")
            return None
        arms = [self._arm(item, f"{path}[{index}]") for index, item in enumerate(value)]
        valid = [arm for arm in arms if arm is not None]
        return tuple(valid) if len(valid) == len(arms) else None

    def _arm(self, value: object, path: str) -> Arm | None:
        fields = self._mapping(value, path, ARM_KEYS)
        if fields is None:
            return None
        to, weight = fields.get("to"), fields.get("weight")
        for key, got in (("to", to), ("weight", weight)):
            if got is None:
                self.error(f"{path}.{key}", "required")
        if to is not None and not isinstance(to, str):
            self.error(f"{path}.to", f"expected string, got {describe(to)}")
            return None
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int)):
            self.error(f"{path}.weight", f"expected integer, got {describe(weight)}")
            return None
        if not isinstance(to, str) or not isinstance(weight, int):
            return None
        return Arm(to, weight)

    def _sticky(self, value: object, path: str) -> Sticky | None:
        if value is None:
            return None
        source, _, key = value.partition(":") if isinstance(value, str) else ("", "", "")
        if source not in {s.value for s in StickySource} or not key:
            self.error(path, f"{STICKY_FORM}, got {describe(value)}")
            return None
        return Sticky(StickySource(source), key)


def _unknown_key(key: str, known: tuple[str, ...]) -> str:
    close = closest_key(key, known)
    return f'unknown key (did you mean "{close}"?)' if close else "unknown key"
