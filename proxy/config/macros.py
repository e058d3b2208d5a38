"""Macros: `${name}` substitution with llama-swap's rules.

* A model sees `MODEL_ID`, then the global macros, then its own; a model macro with a global's
  name replaces it in place, so globals that use it see the model's value.
* A macro may use macros declared before it, never after it (llama-swap substitutes in reverse
  declaration order, which has exactly that effect).
* A string that is exactly `${name}` takes the macro's YAML type (`port: ${PORT}` is an int);
  inside a longer string the value is printed as Go prints it.
* `${PORT}` is assigned per model at load; `${PID}` is only meaningful in `cmdStop`, at stop time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.load import go_str

MacroValue = str | int | float | bool
MacroList = list[tuple[str, MacroValue]]

MACRO_REF = re.compile(r"\$\{([A-Za-z0-9_-]+)\}")
_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
RESERVED = ("PORT", "MODEL_ID", "PID")
MAX_NAME_LEN = 63
MAX_VALUE_LEN = 1023


def parse_macros(raw: object, path: Path, out: Collector) -> MacroList:
    """Validate a `macros:` mapping and return its entries in declaration order."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        out.error(path, "expected mapping of macro name to value, got " + type(raw).__name__)
        return []
    entries: MacroList = []
    for name, value in raw.items():
        problem = _macro_problem(name, value)
        if problem:
            out.error((*path, name), problem)
        elif isinstance(value, str | int | float | bool):
            entries.append((name, value))
    return entries


def _macro_problem(name: str, value: object) -> str | None:
    if len(name) > MAX_NAME_LEN:
        return f"macro name exceeds maximum length of {MAX_NAME_LEN} characters"
    if not _NAME.match(name):
        return "macro name contains invalid characters — use letters, digits, _ and -"
    if name in RESERVED:
        return f"macro name '{name}' is reserved — {', '.join(RESERVED)} are set by swapgate"
    if isinstance(value, str):
        if len(value) > MAX_VALUE_LEN:
            return f"must be at most {MAX_VALUE_LEN} characters long, got {len(value)}"
        if "${" + name + "}" in value:
            return f"macro '{name}' contains a self-reference (recursive macro)"
        return None
    if isinstance(value, bool | int | float):
        return None
    kind = "null" if value is None else type(value).__name__
    return f"expected a scalar (must be a scalar type: string, number or bool), got {kind}"


def scope_for(model_id: str, global_macros: MacroList, model_macros: MacroList) -> MacroList:
    """The ordered macro list one model sees, with every value already expanded."""
    merged: MacroList = [("MODEL_ID", model_id), *global_macros]
    for name, value in model_macros:
        index = next((i for i, (n, _) in enumerate(merged) if n == name), None)
        if index is None:
            merged.append((name, value))
        else:
            merged[index] = (name, value)
    return resolve_chain(merged)


def resolve_chain(entries: MacroList) -> MacroList:
    """Expand each macro's value with the macros declared before it."""
    resolved: MacroList = []
    for name, value in entries:
        table = dict(resolved)
        expanded = expand(value, table) if isinstance(value, str) else value
        resolved.append((name, expanded if isinstance(expanded, MacroValue) else value))
    return resolved


def expand(value: object, table: Mapping[str, MacroValue]) -> object:
    """`value` with every known macro substituted; mapping keys are left as they are."""
    if isinstance(value, str):
        whole = MACRO_REF.fullmatch(value)
        if whole and whole.group(1) in table:
            return table[whole.group(1)]
        return MACRO_REF.sub(lambda m: _text(m, table), value)
    if isinstance(value, dict):
        return {k: expand(v, table) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(item, table) for item in value]
    return value


def expand_str(value: str, table: Mapping[str, MacroValue]) -> str:
    """Plain text substitution (no typing): for keys and command lines."""
    return MACRO_REF.sub(lambda m: _text(m, table), value)


def _text(match: re.Match[str], table: Mapping[str, MacroValue]) -> str:
    name = match.group(1)
    return go_str(table[name]) if name in table else match.group(0)


def leftover_macros(value: object, path: Path) -> list[tuple[Path, str]]:
    """Every `${name}` still present in the strings of `value`, with the path where it is."""
    if isinstance(value, str):
        return [(path, name) for name in MACRO_REF.findall(value)]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in leftover_macros(v, (*path, k))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in leftover_macros(v, (*path, i))]
    return []


def strip_comment_lines(cmd: str) -> str:
    """Drop lines whose first non-space character is `#` (comments inside a `|` block)."""
    return "\n".join(line for line in cmd.split("\n") if not line.strip().startswith("#"))
