"""Request routing: pure rule compilation and matching. Stdlib only, no I/O.

Build rule specs (`Rule`, `Match`, `Arm`, ...), compile them once with `compile_rules()`, then
call `Router.match(RequestFacts(...))` per request.
"""

from router.compile import compile_rules
from router.errors import RuleError, RuleIssue, key_path
from router.facts import RequestFacts
from router.match import Decision, Router
from router.rules import (
    Arm,
    ExactText,
    Match,
    PrefixText,
    RegexText,
    Rule,
    Sticky,
    StickySource,
    TextMatcher,
)
from router.weighted import Picker, sticky_point

__all__ = [
    "Arm",
    "Decision",
    "ExactText",
    "Match",
    "Picker",
    "PrefixText",
    "RegexText",
    "RequestFacts",
    "Router",
    "Rule",
    "RuleError",
    "RuleIssue",
    "Sticky",
    "StickySource",
    "TextMatcher",
    "compile_rules",
    "key_path",
    "sticky_point",
]
