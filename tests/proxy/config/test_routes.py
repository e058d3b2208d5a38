"""Tests for proxy.config.routes: raw `routes` data -> rule specs, issues at YAML paths."""

from __future__ import annotations

import pytest

from swapgate.proxy.config.routes import parse_routes
from swapgate.proxy.errors import Issue
from swapgate.router import Arm, ExactText, Match, PrefixText, RegexText, Rule, Sticky, StickySource

NAMES = {"a": "a", "b": "b", "variant-a": "variant-a", "variant-b": "variant-b", "gpt-4": "a"}
KNOWN = "known models: a, b, gpt-4, variant-a, variant-b"


def errors_of(raw: object) -> list[str]:
    """The rendered error paths and messages for `raw`."""
    _, errors, _ = parse_routes(raw, NAMES, rewrite_default=False)
    return [f"{issue.path}: {issue.message}" for issue in errors]


def test_documented_example_parses() -> None:
    """The README-style example becomes the matching rule specs without issues."""
    raw = [
        {
            "name": "premium",
            "match": {
                "model": "gpt-4",
                "headers": {"X-Model-Tier": "premium", "X-Team": {"regex": "ml|ai"}},
                "path": "/v1/chat/completions",
            },
            "to": "b",
            "rewriteResponseModel": True,
        },
        {
            "name": "chat-ab",
            "match": {"model": {"regex": "^chat-.*$"}, "path": {"prefix": "/v1/"}},
            "split": [{"to": "variant-a", "weight": 70}, {"to": "variant-b", "weight": 30}],
            "sticky": "header:X-User-Id",
        },
        {
            "match": {"path": {"regex": "/v1/embeddings"}},
            "split": [{"to": "a", "weight": 1}],
            "sticky": "body:user",
        },
    ]
    rules, errors, warnings = parse_routes(raw, NAMES, rewrite_default=False)
    assert (errors, warnings) == ([], [])
    assert rules == [
        Rule(
            name="premium",
            match=Match(
                model=ExactText("gpt-4"),
                headers=(("X-Model-Tier", ExactText("premium")), ("X-Team", RegexText("ml|ai"))),
                path=ExactText("/v1/chat/completions"),
            ),
            to="b",
            rewrite_response_model=True,
        ),
        Rule(
            name="chat-ab",
            match=Match(model=RegexText("^chat-.*$"), path=PrefixText("/v1/")),
            split=(Arm("variant-a", 70), Arm("variant-b", 30)),
            sticky=Sticky(StickySource.HEADER, "X-User-Id"),
        ),
        Rule(
            match=Match(path=RegexText("/v1/embeddings")),
            split=(Arm("a", 1),),
            sticky=Sticky(StickySource.BODY, "user"),
        ),
    ]


@pytest.mark.parametrize("raw", [None, []])
def test_absent_or_empty_routes(raw: object) -> None:
    """No routes section, or an empty one, gives no rules and no issues."""
    assert parse_routes(raw, NAMES, rewrite_default=True) == ([], [], [])


def test_rewrite_default_applies_unless_overridden() -> None:
    """A rule without rewriteResponseModel inherits the global default."""
    raw = [
        {"match": {"model": "x"}, "to": "a"},
        {"match": {"model": "y"}, "to": "a", "rewriteResponseModel": False},
    ]
    rules, _, _ = parse_routes(raw, NAMES, rewrite_default=True)
    assert [rule.rewrite_response_model for rule in rules] == [True, False]


def test_router_problems_reported_at_yaml_paths() -> None:
    """Unknown targets, bad regexes, weights, to+split, duplicates and empty match are errors."""
    raw = [
        {"name": "r", "match": {"model": {"regex": "^llama3-(.*$"}}, "to": "a"},
        {
            "name": "ab",
            "match": {"model": "chat"},
            "split": [{"to": "a", "weight": 1}, {"to": "varient-a", "weight": 1}],
        },
        {"name": "zero", "match": {"model": "z"}, "split": [{"to": "a", "weight": 0}]},
        {"name": "r", "match": {"model": "y"}, "to": "a", "split": [{"to": "b", "weight": 1}]},
        {"to": "a"},
        {"match": {"model": "q"}, "to": "a"},
    ]
    assert errors_of(raw) == [
        "routes[0].match.model.regex: invalid regex: missing ), unterminated subpattern at position 8",
        f'routes[1].split[1].to: unknown model "varient-a"; {KNOWN}',
        "routes[2].split: weights must include at least one > 0",
        'routes[3].name: "r" already used by routes[0].name',
        'routes[3]: must have exactly one of "to" or "split", got both',
        "routes[4].match: must constrain model, headers or path unless it is the last rule",
    ]


def test_shape_problems() -> None:
    """Wrong types, missing arm fields and bad sticky forms are errors at their paths."""
    raw = [
        "not a rule",
        {"match": {"model": 5}, "to": "a"},
        {"match": {"headers": {"X-V": 2}}, "to": "a"},
        {"match": {"path": {"glob": "/v1/*"}}, "to": "a"},
        {"match": {"model": "m"}, "split": [{"to": "a"}, {"weight": True, "to": "b"}]},
        {"match": {"model": "n"}, "split": []},
        {"match": {"model": "o"}, "to": "a", "sticky": "cookie:x"},
        {"match": {"model": "p"}, "to": ["a"], "rewriteResponseModel": "yes"},
        {"match": {"model": {"regex": 1}}, "to": "a"},
    ]
    assert errors_of(raw) == [
        'routes[0]: expected mapping, got string "not a rule"',
        'routes[1].match.model: expected string or {regex: ...}, got integer 5 — quote it: "5"',
        'routes[2].match.headers.X-V: expected string or {regex: ...}, got integer 2 — quote it: "2"',
        'routes[3].match.path: must be one of: prefix, regex; got "glob"',
        "routes[4].split[0].weight: required",
        "routes[4].split[1].weight: expected integer, got bool true",
        "routes[5].split: must have at least one variant",
        'routes[6].sticky: must be "header:<name>" or "body:<field>", got string "cookie:x"',
        "routes[7].to: expected string, got list",
        'routes[7].rewriteResponseModel: expected bool, got string "yes"',
        "routes[8].match.model.regex: expected string, got integer 1",
    ]


def test_routes_must_be_a_list() -> None:
    """A mapping where the list belongs is one error at `routes`."""
    assert errors_of({"premium": {}}) == ["routes: expected list, got mapping"]


def test_unknown_keys_and_shadowing_warn() -> None:
    """Unknown keys warn with a suggestion; a rule an earlier one always takes warns."""
    raw = [
        {"name": "first", "match": {"model": "gpt-4", "pth": "/"}, "to": "a", "stiky": "x"},
        {
            "match": {"model": "gpt-4", "path": "/v1/x"},
            "split": [{"to": "a", "weigth": 1, "weight": 1}],
        },
    ]
    rules, errors, warnings = parse_routes(raw, NAMES, rewrite_default=False)
    assert errors == []
    assert len(rules) == 2
    assert warnings == [
        Issue("routes[0].stiky", 'unknown key (did you mean "sticky"?)'),
        Issue("routes[0].match.pth", 'unknown key (did you mean "path"?)'),
        Issue("routes[1].split[0].weigth", 'unknown key (did you mean "weight"?)'),
        Issue(
            "routes[1].match",
            'never matches: shadowed by routes[0] "first" — move it above routes[0] or remove it',
        ),
    ]


def test_paths_stay_correct_after_a_skipped_rule() -> None:
    """A rule dropped for its shape does not shift the paths of later rules' problems."""
    raw = [42, {"match": {"model": "x"}, "to": "nope"}]
    assert errors_of(raw) == [
        "routes[0]: expected mapping, got integer 42",
        f'routes[1].to: unknown model "nope"; {KNOWN}',
    ]
