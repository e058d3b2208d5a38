"""Hypothesis strategies for router tests: valid rule lists, request facts, rule defects.

Values come from small pools so that generated rules and requests overlap often enough for
matches, misses, shadowing and every split path to occur.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from swapgate.router import (
    Arm,
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

# Model ids map to themselves; aliases map to an id.
NAMES = {
    "a": "a",
    "b": "b",
    "llama3-8b": "llama3-8b",
    "gpt-4": "a",
    "chat": "b",
}
REQUEST_MODELS = [*NAMES, "chat-x", "unknown", "GPT-4"]
REGEXES = ["chat.*", "[ab]", "llama3-.*", "(?i)GPT-4", "a|b", ".*", "x+", "/v1/.*", "u[0-9]"]
PREFIXES = ["", "ch", "/v1/", "/v1/chat", "u", "pre"]
HEADER_NAMES = ["X-Tier", "x-tier", "X-User", "X-Other"]
HEADER_VALUES = ["premium", "free", "", "u1", "u2", "x"]
PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/other"]
TEXTS = sorted({*REQUEST_MODELS, *HEADER_VALUES, *PATHS})
TARGETS = sorted(NAMES)


def matchers() -> st.SearchStrategy[TextMatcher]:
    """Exact, regex or prefix conditions over the shared value pools."""
    return st.one_of(
        st.builds(ExactText, st.sampled_from(TEXTS)),
        st.builds(RegexText, st.sampled_from(REGEXES)),
        st.builds(PrefixText, st.sampled_from(PREFIXES)),
    )


def matches() -> st.SearchStrategy[Match]:
    """Conditions on model, up to two headers and path, each optional."""
    return st.builds(
        Match,
        model=st.none() | matchers(),
        headers=st.lists(st.tuples(st.sampled_from(HEADER_NAMES), matchers()), max_size=2).map(
            tuple
        ),
        path=st.none() | matchers(),
    )


@st.composite
def splits(draw: st.DrawFn) -> tuple[Arm, ...]:
    """One to three variants with distinct targets and at least one positive weight."""
    targets = draw(st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3, unique=True))
    weights = draw(st.lists(st.integers(0, 5), min_size=len(targets), max_size=len(targets)))
    if not any(weights):
        weights[0] = 1
    return tuple(Arm(to, weight) for to, weight in zip(targets, weights, strict=True))


stickies = st.none() | st.sampled_from(
    [
        Sticky(StickySource.HEADER, "X-User"),
        Sticky(StickySource.HEADER, "x-tier"),
        Sticky(StickySource.BODY, "user"),
    ]
)


@st.composite
def rule_lists(draw: st.DrawFn, max_rules: int = 6, pinned_header: bool = False) -> list[Rule]:
    """Valid rule lists: unique names, one of to/split, an empty match only last.

    With `pinned_header`, most rules also pin X-Tier to an exact value, so that runs of
    rules long enough to become header blocks appear.
    """
    count = draw(st.integers(0, max_rules))
    rules: list[Rule] = []
    for index in range(count):
        match = draw(matches())
        if pinned_header and draw(st.integers(0, 4)):
            pin = ("X-Tier", ExactText(draw(st.sampled_from(HEADER_VALUES))))
            match = replace(match, headers=(*match.headers, pin))
        if match.is_empty() and index != count - 1:
            match = Match(model=ExactText(draw(st.sampled_from(REQUEST_MODELS))))
        name = draw(st.none() | st.just(f"rule-{index}"))
        rewrite = draw(st.booleans())
        if draw(st.booleans()):
            rule = Rule(name=name, match=match, to=draw(st.sampled_from(TARGETS)))
        else:
            rule = Rule(name=name, match=match, split=draw(splits()), sticky=draw(stickies))
        rules.append(replace(rule, rewrite_response_model=rewrite))
    return rules


@st.composite
def facts(draw: st.DrawFn) -> RequestFacts:
    """Requests with lower-cased header names and an optional JSON body `user` field."""
    headers = draw(
        st.dictionaries(
            st.sampled_from(sorted({h.lower() for h in HEADER_NAMES})),
            st.sampled_from(HEADER_VALUES),
        )
    )
    body = draw(
        st.none()
        | st.fixed_dictionaries(
            {"user": st.one_of(st.sampled_from(HEADER_VALUES), st.integers(), st.booleans())}
        )
    )
    return RequestFacts(
        model=draw(st.sampled_from(REQUEST_MODELS)),
        path=draw(st.sampled_from(PATHS)),
        headers=headers,
        body_fields=body,
    )


DEFECTS = [
    "duplicate_name",
    "bad_model_regex",
    "bad_header_regex",
    "unknown_to",
    "unknown_arm",
    "negative_weight",
    "no_positive_weight",
    "both_to_and_split",
    "neither_to_nor_split",
    "empty_match_not_last",
]


@st.composite
def broken_rule_lists(draw: st.DrawFn) -> tuple[list[Rule], set[str]]:
    """A valid rule list with defects injected into some rules, and the paths they must hit."""
    rules = draw(rule_lists().filter(lambda found: len(found) >= 2))
    positions = draw(st.lists(st.integers(0, len(rules) - 1), min_size=1, max_size=3, unique=True))
    expected: set[str] = set()
    # Increasing order: a duplicate name copies the (final) name of the rule just before it.
    for index in sorted(positions):
        defect = draw(st.sampled_from(DEFECTS))
        if defect == "duplicate_name" and index == 0:
            defect = "unknown_to"
        if defect == "empty_match_not_last" and index == len(rules) - 1:
            defect = "bad_model_regex"
        rules[index], path = _inject(defect, rules, index)
        expected.add(path)
    return rules, expected


def _inject(defect: str, rules: list[Rule], index: int) -> tuple[Rule, str]:
    rule = rules[index]
    at = f"routes[{index}]"
    match defect:
        case "duplicate_name":
            before = rules[index - 1]
            name = before.name if before.name is not None else f"routes[{index - 1}]"
            return replace(rule, name=name), f"{at}.name"
        case "bad_model_regex":
            return replace(rule, match=replace(rule.match, model=RegexText("(x"))), (
                f"{at}.match.model.regex"
            )
        case "bad_header_regex":
            headers = (("X-Odd Name", RegexText("[a-")),)
            return replace(rule, match=replace(rule.match, headers=headers)), (
                f'{at}.match.headers["X-Odd Name"].regex'
            )
        case "unknown_to":
            return replace(rule, to="varient-a", split=(), sticky=None), f"{at}.to"
        case "unknown_arm":
            return replace(rule, to=None, split=(Arm("a", 1), Arm("varient-a", 1))), (
                f"{at}.split[1].to"
            )
        case "negative_weight":
            return replace(rule, to=None, split=(Arm("a", -1), Arm("b", 2))), (
                f"{at}.split[0].weight"
            )
        case "no_positive_weight":
            return replace(rule, to=None, split=(Arm("a", 0), Arm("b", 0))), f"{at}.split"
        case "both_to_and_split":
            return replace(rule, to="a", split=(Arm("b", 1),), sticky=None), at
        case "neither_to_nor_split":
            return replace(rule, to=None, split=(), sticky=None), at
        case _:
            return replace(rule, match=Match()), f"{at}.match"
