"""Rule specs: the router's input, as plain frozen data. Stdlib only.

These records say what a rule asks for; `compile.py` checks them and builds the matcher.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExactText:
    """Matches a value equal to `value`."""

    value: str


@dataclass(frozen=True, slots=True)
class RegexText:
    """Matches a value that `pattern` matches in full (`re.fullmatch`)."""

    pattern: str


@dataclass(frozen=True, slots=True)
class PrefixText:
    """Matches a value that starts with `prefix`."""

    prefix: str


TextMatcher = ExactText | RegexText | PrefixText


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """The conditions of one rule; all given conditions must hold. Empty means "any request".

    Header names are compared case-insensitively; each name appears at most once per rule
    (a mapping in YAML), but repeating one is allowed and means both must hold.
    """

    model: TextMatcher | None = None
    headers: tuple[tuple[str, TextMatcher], ...] = ()
    path: TextMatcher | None = None

    def is_empty(self) -> bool:
        """True when the match constrains nothing."""
        return self.model is None and not self.headers and self.path is None


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant of a weighted split: a model id or alias and an integer weight."""

    to: str
    weight: int


class StickySource(enum.StrEnum):
    """Where a split reads the key that pins a client to one variant."""

    HEADER = "header"
    BODY = "body"


@dataclass(frozen=True, slots=True)
class Sticky:
    """`header:X-User-Id` or `body:user`: the key that keeps a client on one variant."""

    source: StickySource
    key: str

    def __str__(self) -> str:
        return f"{self.source}:{self.key}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One routing rule. Exactly one of `to` and `split` must be set (checked at compile)."""

    name: str | None = None
    match: Match = Match()
    to: str | None = None
    split: tuple[Arm, ...] = ()
    sticky: Sticky | None = None
    rewrite_response_model: bool = False
