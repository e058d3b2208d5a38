"""Issue collection for the config walk: paths in the house grammar, lines from YAML marks.

Every check appends to one `Collector` instead of raising, so a user sees every problem in a
single run (llama-swap stops at the first one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.errors import Issue

PathPart = str | int
Path = tuple[PathPart, ...]
# Where each YAML node came from: path -> (line, file).
LineMap = Mapping[Path, tuple[int, str]]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def fmt_path(path: Path) -> str:
    """`models["qwen2.5:7b"].aliases[0]`: dots for plain keys, brackets for the rest."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


_PATH_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def parse_path(text: str) -> Path:
    """The inverse of fmt_path: `routes[1].split[0].to` -> ("routes", 1, "split", 0, "to")."""
    parts: list[PathPart] = []
    for name, index, quoted in _PATH_PART.findall(text):
        parts.append(name or (int(index) if index else json.loads(quoted)))
    return tuple(parts)


def describe(value: object) -> str:
    """A value as it appears after `got`: its YAML type name and its text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"bool {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "list"
    return "mapping"


@dataclass
class Collector:
    """Accumulates errors and warnings; knows the source line of every path it was given."""

    lines: LineMap = field(default_factory=dict)
    default_file: str = "config"
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    def _issue(self, path: Path, message: str) -> Issue:
        probe = path
        while probe:
            if probe in self.lines:
                line, file = self.lines[probe]
                return Issue(fmt_path(path), message, line, file)
            probe = probe[:-1]
        return Issue(fmt_path(path), message, None, self.default_file)

    def error(self, path: Path, message: str) -> None:
        """Record a problem that makes the config unusable."""
        self.errors.append(self._issue(path, message))

    def warn(self, path: Path, message: str) -> None:
        """Record something swapgate changed or ignores; the config still loads."""
        self.warnings.append(self._issue(path, message))

    def sorted_errors(self) -> list[Issue]:
        """Errors in document order (file, then line); unlocated ones last."""
        return sorted(self.errors, key=lambda i: (i.line is None, i.file or "", i.line or 0))
