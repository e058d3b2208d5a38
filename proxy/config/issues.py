"""Issue collection for the config walk: paths in the house grammar, lines from YAML marks.

Every check appends to one `Collector` instead of raising, so a user sees every problem in a
single run (llama-swap stops at the first one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from swapgate.proxy.errors import Issue

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


def in_line_order(issues: list[Issue]) -> list[Issue]:
    """Issues in document order (file, then line), each once; unlocated ones last."""
    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda i: (i.line is None, i.file or "", i.line or 0))


MAX_LINES_SHOWN = 6


def group_model_warnings(warnings: list[Issue]) -> list[Issue]:
    """One warning for the same message at the same key of several models, with the count and
    the lines: `models.*.readyTimeout: unknown key, in 15 models (lines 4, 9, …); ignored`."""
    groups: dict[tuple[Path, str, str | None], list[Issue]] = {}
    for issue in warnings:
        key = _group_key(issue)
        if key is not None:
            groups.setdefault(key, []).append(issue)
    result: list[Issue] = []
    for issue in warnings:
        key = _group_key(issue)
        members = [] if key is None else groups[key]
        if len(members) < 2:
            result.append(issue)
        elif members[0] is issue:
            result.append(_grouped(members))
    return result


def _group_key(issue: Issue) -> tuple[Path, str, str | None] | None:
    """(the path below the model, message, file) for a per-model warning, else None."""
    path = parse_path(issue.path)
    if len(path) < 3 or path[0] != "models" or fmt_path(path) != issue.path:
        return None
    return path[2:], issue.message, issue.file


def _grouped(members: list[Issue]) -> Issue:
    rest = parse_path(members[0].path)[2:]
    lines = sorted({i.line for i in members if i.line is not None})
    shown = ", ".join(str(n) for n in lines[:MAX_LINES_SHOWN])
    if len(lines) > MAX_LINES_SHOWN:
        shown += ", …"
    where = f" (line{'s' if len(lines) > 1 else ''} {shown})" if lines else ""
    count = f", in {len(members)} models{where}"
    message = members[0].message
    cut = _first_clause_end(message)
    message = message[:cut] + count + message[cut:]
    path = "models.*" + fmt_path(("_", *rest))[1:]
    return Issue(path, message, lines[0] if lines else None, members[0].file)


def _first_clause_end(message: str) -> int:
    """Where the first clause ends: the first `; ` or ` — ` outside parentheses, else the end."""
    depth = 0
    for i, ch in enumerate(message):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and (message.startswith("; ", i) or message.startswith(" — ", i)):
            return i
    return len(message)


@dataclass
class Collector:
    """Accumulates errors and warnings; knows the source line of every path it was given.

    `tainted` holds the paths whose value came from an unset `${env.NAME}` (read as empty):
    issues there would only repeat that error, so they are not recorded. `broken` says a source
    could not be read or parsed, so the rest of the walk would report nonsense and is skipped.
    """

    lines: LineMap = field(default_factory=dict)
    default_file: str = "config"
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    tainted: set[Path] = field(default_factory=set)
    tainted_keys: set[Path] = field(default_factory=set)  # only the key itself, not inside it
    broken: bool = False

    def _issue(self, path: Path, message: str) -> Issue:
        probe = path
        while probe:
            if probe in self.lines:
                line, file = self.lines[probe]
                return Issue(fmt_path(path), message, line, file)
            probe = probe[:-1]
        return Issue(fmt_path(path), message, None, self.default_file)

    def derived(self, path: Path) -> bool:
        """True when `path` holds (or is inside) a value taken from an unset variable."""
        return path in self.tainted_keys or any(path[: len(t)] == t for t in self.tainted)

    def error(self, path: Path, message: str, *, subject: str = "") -> None:
        """Record a problem that makes the config unusable.

        `subject` follows the path (`models.b.aliases[0] "x": already used by ...`).
        """
        if self.derived(path):
            return
        issue = self._issue(path, message)
        self.errors.append(replace(issue, path=f"{issue.path} {subject}") if subject else issue)

    def warn(self, path: Path, message: str) -> None:
        """Record something swapgate changed or ignores; the config still loads."""
        if not self.derived(path):
            self.warnings.append(self._issue(path, message))

    def sorted_errors(self) -> list[Issue]:
        """Errors in document order (file, then line); unlocated ones last."""
        return in_line_order(self.errors)

    def sorted_warnings(self) -> list[Issue]:
        """Warnings in document order, the same one in several models reported once."""
        return in_line_order(group_model_warnings(in_line_order(self.warnings)))
