"""Request routing: pure rule compilation and matching. Stdlib only, no I/O.

Build rule specs (`Rule`, `Match`, `Arm`, ...), compile them once with `compile_rules()`, then
call `Router.match(RequestFacts(...))` per request.
"""

from swapgate.router.compile import compile_rules
from swapgate.router.errors import RuleError, RuleIssue, key_path
from swapgate.router.facts import RequestFacts
from swapgate.router.match import Decision, Router
from swapgate.router.rules import (
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
from swapgate.router.weighted import Picker, sticky_point

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
