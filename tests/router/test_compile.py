"""Tests for compile_rules: every problem reported at its rule path, warnings, public API."""

from __future__ import annotations

import pytest
from hypothesis import given

from swapgate import router
from swapgate.router import (
    Arm,
    ExactText,
    Match,
    PrefixText,
    RegexText,
    Rule,
    RuleError,
    RuleIssue,
    Sticky,
    StickySource,
    compile_rules,
)
from tests.router.strategies import NAMES, broken_rule_lists

GPT4 = Match(model=ExactText("gpt-4"))


def problems(rules: list[Rule]) -> list[str]:
    """The rendered issues compile_rules raises for `rules`."""
    with pytest.raises(RuleError) as caught:
        compile_rules(rules, NAMES)
    return [issue.render() for issue in caught.value.issues]


def test_public_api_is_exported() -> None:
    """Everything in router.__all__ exists, and the main entry points are listed."""
    for name in router.__all__:
        assert hasattr(router, name)
    assert {"compile_rules", "RequestFacts", "Decision", "Router", "RuleError"} <= set(
        router.__all__
    )


def test_unknown_targets_list_known_models() -> None:
    """Unknown `to` and split targets name the model and list the known ones."""
    rules = [
        Rule(match=GPT4, to="nope"),
        Rule(
            name="ab",
            match=Match(model=ExactText("chat")),
            split=(Arm("a", 1), Arm("varient-a", 1)),
        ),
    ]
    known = "known models: a, b, chat, gpt-4, llama3-8b"
    assert problems(rules) == [
        f'routes[0].to: unknown model "nope"; {known}',
        f'routes[1].split[1].to: unknown model "varient-a"; {known}',
    ]


def test_bad_regex_reports_message_and_position() -> None:
    """An invalid regex names re's message and the position where it failed."""
    rules = [Rule(match=Match(model=RegexText("^llama3-(.*$")), to="a")]
    assert problems(rules) == [
        "routes[0].match.model.regex: invalid regex: missing ), unterminated subpattern "
        "at position 8"
    ]


def test_header_paths_quote_odd_names() -> None:
    """Header paths use `.Name` for plain names and `["…"]` for others."""
    headers = (("X-Tier", RegexText("(")), ("x tier", RegexText("[")), ("X-Ok", PrefixText("")))
    issues = problems([Rule(match=Match(headers=headers, path=RegexText("[")), to="a")])
    assert [line.split(": ")[0] for line in issues] == [
        "routes[0].match.headers.X-Tier.regex",
        'routes[0].match.headers["x tier"].regex',
        "routes[0].match.path.regex",
    ]


def test_duplicate_names_including_display_names() -> None:
    """A name used twice, or equal to another rule's display path, is an error."""
    rules = [
        Rule(name="premium", match=GPT4, to="a"),
        Rule(match=Match(model=ExactText("m")), to="a"),
        Rule(name="premium", match=Match(model=ExactText("x")), to="b"),
        Rule(name="routes[1]", match=Match(model=ExactText("y")), to="b"),
    ]
    assert problems(rules) == [
        'routes[2].name: "premium" already used by routes[0].name',
        'routes[3].name: "routes[1]" already used by routes[1]',
    ]


def test_bad_names() -> None:
    """Rule names must be non-empty and free of "/", which separates rule and variant."""
    rules = [
        Rule(name="", match=GPT4, to="a"),
        Rule(name="a/b", match=Match(path=ExactText("/")), to="a"),
    ]
    assert problems(rules) == [
        "routes[0].name: must be a non-empty string",
        'routes[1].name: must not contain "/", got "a/b"',
    ]


def test_to_and_split_exclusive() -> None:
    """A rule needs exactly one of `to` and `split`."""
    rules = [
        Rule(match=GPT4, to="a", split=(Arm("b", 1),)),
        Rule(match=Match(model=ExactText("m"))),
    ]
    assert problems(rules) == [
        'routes[0]: must have exactly one of "to" or "split", got both',
        'routes[1]: must have exactly one of "to" or "split", got neither',
    ]


def test_weights() -> None:
    """Negative weights, an all-zero split, an empty split and repeated variants are errors."""
    rules = [
        Rule(match=GPT4, split=(Arm("a", -1), Arm("b", 0))),
        Rule(match=Match(model=ExactText("m")), split=(Arm("a", 1), Arm("a", 2))),
    ]
    assert problems(rules) == [
        "routes[0].split[0].weight: must be >= 0, got -1",
        "routes[0].split: weights must include at least one > 0",
        'routes[1].split[1].to: "a" already used by routes[1].split[0].to',
    ]


def test_empty_match_only_last() -> None:
    """An empty match is a catch-all and may only be the last rule."""
    rules = [Rule(to="a"), Rule(match=GPT4, to="b")]
    assert problems(rules) == [
        "routes[0].match: must constrain model, headers or path unless it is the last rule"
    ]


def test_custom_paths_name_rules() -> None:
    """`paths` replaces routes[i] in messages and display names (rules parsed from a file)."""
    with pytest.raises(RuleError) as caught:
        compile_rules([Rule(match=GPT4, to="nope")], NAMES, paths=["routes[4]"])
    assert caught.value.issues[0].path == "routes[4].to"
    built = compile_rules([Rule(match=GPT4, to="a")], NAMES, paths=["routes[4]"])
    assert built.rule_names == ("routes[4]",)


def test_shadowed_rules_warn() -> None:
    """Rules an earlier catch-all, identical or less specific match always takes first warn."""
    rules = [
        Rule(name="premium", match=GPT4, to="a"),
        Rule(match=GPT4, to="b"),
        Rule(match=Match(model=ExactText("gpt-4"), headers=(("X-T", ExactText("1")),)), to="b"),
        Rule(match=Match(model=ExactText("gpt-4"), path=PrefixText("")), to="b"),
        Rule(match=Match(model=RegexText("gpt-4")), to="b"),
        Rule(name="all", to="b"),
    ]
    warnings = compile_rules(rules, NAMES).warnings
    shadowed = (
        'never matches: shadowed by routes[0] "premium" — move it above routes[0] or remove it'
    )
    assert warnings == (
        RuleIssue("routes[1].match", shadowed),
        RuleIssue("routes[2].match", shadowed),
        RuleIssue("routes[3].match", shadowed),
    )


def test_sticky_on_plain_rule_warns() -> None:
    """A sticky key on a `to` rule does nothing, so it is a warning."""
    rule = Rule(match=GPT4, to="a", sticky=Sticky(StickySource.HEADER, "X-User"))
    assert compile_rules([rule], NAMES).warnings == (
        RuleIssue("routes[0].sticky", "ignored: only a split uses it — remove it or use split"),
    )


def test_rule_error_renders_every_issue() -> None:
    """str(RuleError) has a count line, then one line per issue."""
    error = RuleError([RuleIssue("routes[0].to", "required"), RuleIssue("routes[1]", "x")])
    assert str(error).splitlines() == ["2 rule problems", "routes[0].to: required", "routes[1]: x"]


@given(broken_rule_lists())
def test_every_defect_reported_at_its_path(case: tuple[list[Rule], set[str]]) -> None:
    """Injected defects are all reported, each at its own path, and nothing else is."""
    rules, expected = case
    with pytest.raises(RuleError) as caught:
        compile_rules(rules, NAMES)
    assert {issue.path for issue in caught.value.issues} == expected
