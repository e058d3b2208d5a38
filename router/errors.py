"""Rule problems found at compile time: RuleIssue records and RuleError. Stdlib only.

The router cannot import `proxy.errors`, so it keeps its own tiny record; the config layer
converts RuleIssue into its Issue with the same path and message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class RuleIssue:
    """One problem (or warning) at a rule path such as `routes[1].split[0].to`."""

    path: str
    message: str

    def render(self) -> str:
        """`path: message`, the line format config errors use."""
        return f"{self.path}: {self.message}"


class RuleError(ValueError):
    """Rules that cannot be compiled; carries every problem found, in rule order."""

    def __init__(self, issues: list[RuleIssue], warnings: list[RuleIssue] | None = None) -> None:
        self.issues = issues
        self.warnings = warnings or []
        count = len(issues)
        head = f"{count} rule problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([head, *(issue.render() for issue in issues)]))


def key_path(base: str, key: str) -> str:
    """Append a mapping key to a path: `.key` when plain, else `["json quoted"]`."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{base}.{key}" if base else key
    return f"{base}[{json.dumps(key)}]"
