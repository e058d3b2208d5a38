"""Tests for Router.match and Router.label, including the differential property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from swapgate.router import (
    Arm,
    Decision,
    ExactText,
    Match,
    PrefixText,
    RegexText,
    RequestFacts,
    Rule,
    Sticky,
    StickySource,
    compile_rules,
)
from tests.router.reference import reference_match
from tests.router.strategies import NAMES, facts, rule_lists

CHAT = "/v1/chat/completions"


def request(model: str, path: str = CHAT, **headers: str) -> RequestFacts:
    """Facts with header keyword names turned into lower-case dashed names."""
    return RequestFacts(model, path, {k.replace("_", "-").lower(): v for k, v in headers.items()})


def test_first_matching_rule_wins() -> None:
    """Of two rules that both match, the earlier one decides."""
    router = compile_rules(
        [
            Rule(name="first", match=Match(model=RegexText("gpt-.*")), to="a"),
            Rule(name="second", match=Match(model=ExactText("gpt-4")), to="b"),
        ],
        NAMES,
    )
    assert router.match(request("gpt-4")) == Decision("a", "first", None, False)


def test_exact_rule_declared_first_beats_later_regex() -> None:
    """The exact-name index keeps declared order against rules found by regex."""
    router = compile_rules(
        [
            Rule(name="exact", match=Match(model=ExactText("chat-x")), to="a"),
            Rule(name="regex", match=Match(model=RegexText("chat.*")), to="b"),
        ],
        NAMES,
    )
    assert router.match(request("chat-x")) == Decision("a", "exact", None, False)
    assert router.match(request("chat-y")) == Decision("b", "regex", None, False)


def test_headers_are_case_insensitive_and_all_required() -> None:
    """Rule header names match lower-cased request headers; every listed header must hold."""
    rule = Rule(
        name="premium",
        match=Match(
            model=ExactText("gpt-4"),
            headers=(("X-Model-Tier", ExactText("premium")), ("X-Team", RegexText("ml|ai"))),
        ),
        to="llama3-8b",
    )
    router = compile_rules([rule], NAMES)
    hit = router.match(request("gpt-4", x_model_tier="premium", x_team="ai"))
    assert hit == Decision("llama3-8b", "premium", None, False)
    assert router.match(request("gpt-4", x_model_tier="premium")) == Decision(
        "a", None, None, False
    )


def test_path_matchers() -> None:
    """Path conditions support exact, prefix and full-match regex."""
    rules = [
        Rule(name="exact", match=Match(path=ExactText("/v1/embeddings")), to="a"),
        Rule(name="regex", match=Match(path=RegexText("/v1/.*completions")), to="b"),
        Rule(name="prefix", match=Match(path=PrefixText("/v1/")), to="llama3-8b"),
    ]
    router = compile_rules(rules, NAMES)
    assert [
        router.match(request("x", path)) for path in ("/v1/embeddings", CHAT, "/v1/models")
    ] == [
        Decision("a", "exact", None, False),
        Decision("b", "regex", None, False),
        Decision("llama3-8b", "prefix", None, False),
    ]
    assert router.match(request("x", "/v2/models")) is None


def test_regex_is_full_match() -> None:
    """A regex must match the whole value, not just a prefix of it."""
    router = compile_rules([Rule(match=Match(model=RegexText("llama3")), to="a")], NAMES)
    assert router.match(request("llama3-8b")) == Decision("llama3-8b", None, None, False)


def test_fallback_resolves_ids_and_aliases() -> None:
    """Without a matching rule, ids and aliases resolve; unknown names give None."""
    router = compile_rules([], NAMES, rewrite_default=True)
    assert router.match(request("chat")) == Decision("b", None, None, True)
    assert router.match(request("nope")) is None


def test_targets_resolve_aliases_and_unnamed_rules_show_path() -> None:
    """`to: gpt-4` resolves to model a; an unnamed rule is labelled routes[i]."""
    rules = [
        Rule(name="x", match=Match(model=ExactText("x")), to="a"),
        Rule(match=Match(model=ExactText("m")), to="gpt-4", rewrite_response_model=True),
    ]
    router = compile_rules(rules, NAMES)
    decision = router.match(request("m"))
    assert decision == Decision("a", "routes[1]", None, True)
    assert router.label(decision) == "routes[1]"


def test_split_sticky_header_and_label() -> None:
    """A sticky split pins a key to one variant; the label is rule/variant as written."""
    rule = Rule(
        name="chat-ab",
        match=Match(model=ExactText("chat")),
        split=(Arm("gpt-4", 70), Arm("b", 30)),
        sticky=Sticky(StickySource.HEADER, "X-User-Id"),
    )
    router = compile_rules([rule], NAMES, random=lambda: 0.99)
    decisions = {router.match(request("chat", x_user_id="user-42")) for _ in range(5)}
    assert decisions == {Decision("b", "chat-ab", "b", False)}  # pinned: user-42 -> point 98
    alice = router.match(request("chat", x_user_id="alice"))
    assert alice == Decision("a", "chat-ab", "gpt-4", False)
    assert router.label(alice) == "chat-ab/gpt-4"


def test_split_without_key_uses_injected_random() -> None:
    """With no sticky key the injected random source decides the variant."""
    rule = Rule(
        name="ab",
        match=Match(model=ExactText("chat")),
        split=(Arm("a", 1), Arm("b", 1)),
        sticky=Sticky(StickySource.BODY, "user"),
    )
    low = compile_rules([rule], NAMES, random=lambda: 0.2)
    high = compile_rules([rule], NAMES, random=lambda: 0.7)
    assert low.match(request("chat")) == Decision("a", "ab", "a", False)
    assert high.match(request("chat")) == Decision("b", "ab", "b", False)
    bodied = RequestFacts("chat", CHAT, {}, {"user": True})  # a bool is not an identity
    assert high.match(bodied) == Decision("b", "ab", "b", False)


def test_sticky_body_field_accepts_strings_and_integers() -> None:
    """`body:user` keys by a string or integer field, the same as its text form."""
    rule = Rule(
        name="ab",
        match=Match(model=ExactText("chat")),
        split=(Arm("a", 70), Arm("b", 30)),
        sticky=Sticky(StickySource.BODY, "user"),
    )
    router = compile_rules([rule], NAMES, random=lambda: 0.0)
    by_text = router.match(RequestFacts("chat", CHAT, {}, {"user": "user-42"}))
    assert by_text == Decision("b", "ab", "b", False)
    assert router.match(RequestFacts("chat", CHAT, {}, {"user": 42})) == router.match(
        RequestFacts("chat", CHAT, {}, {"user": "42"})
    )


def test_catch_all_last_rule() -> None:
    """An empty match on the last rule takes every request no earlier rule took."""
    router = compile_rules([Rule(name="all", to="b")], NAMES)
    assert router.match(request("anything")) == Decision("b", "all", None, False)
    assert router.label(Decision("b", None, None, False)) is None


def test_many_distinct_models_stay_correct() -> None:
    """Past the candidate memo's bound, lookups keep giving the same answers."""
    router = compile_rules([Rule(name="r", match=Match(model=RegexText("m-1.*")), to="a")], NAMES)
    for i in range(5000):
        expected = Decision("a", "r", None, False) if str(i).startswith("1") else None
        assert router.match(request(f"m-{i}")) == expected


@given(rule_lists(), st.lists(facts(), min_size=1, max_size=5), st.floats(0, 1, exclude_max=True))
def test_router_agrees_with_reference(
    rules: list[Rule], requests: list[RequestFacts], point: float
) -> None:
    """The compiled router answers every request exactly like the naive interpreter."""
    router = compile_rules(rules, NAMES, rewrite_default=True, random=lambda: point)
    for facts_ in requests:
        expected = reference_match(rules, NAMES, facts_, lambda: point, rewrite_default=True)
        assert router.match(facts_) == expected


def test_prefilter_skipped_for_group_references() -> None:
    """A backreference stays correct: patterns are not joined when one refers to a group."""
    rules = [
        Rule(name="c", match=Match(model=RegexText("(c)hat.*")), to="a"),
        Rule(name="x", match=Match(model=RegexText("(x)\\1")), to="b"),
    ]
    router = compile_rules(rules, NAMES)
    assert router.match(request("xx")) == Decision("b", "x", None, False)
    assert router.match(request("xy")) is None


def test_header_block_keeps_declared_order() -> None:
    """In a run of rules pinning one header, the earliest accepting rule still wins."""
    rules = [
        Rule(name=f"t{i}", match=Match(headers=(("X-Tenant", ExactText(f"t{i % 3}")),)), to="a")
        for i in range(6)
    ]
    rules[0] = Rule(
        name="t0",
        match=Match(headers=(("X-Tenant", ExactText("t0")),), path=ExactText("/only")),
        to="b",
    )
    router = compile_rules(rules, NAMES)
    assert router.match(request("m", x_tenant="t0")) == Decision("a", "t3", None, False)
    assert router.match(request("m", "/only", x_tenant="t0")) == Decision("b", "t0", None, False)
    assert router.match(request("m", x_tenant="t9")) is None


@given(
    rule_lists(max_rules=14, pinned_header=True),
    st.lists(facts(), min_size=1, max_size=5),
    st.floats(0, 1, exclude_max=True),
)
def test_header_blocks_agree_with_reference(
    rules: list[Rule], requests: list[RequestFacts], point: float
) -> None:
    """Longer rule lists that form header blocks still answer like the naive interpreter."""
    router = compile_rules(rules, NAMES, random=lambda: point)
    for facts_ in requests:
        assert router.match(facts_) == reference_match(rules, NAMES, facts_, lambda: point)
