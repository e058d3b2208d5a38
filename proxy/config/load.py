"""Reading config files: YAML with yaml.v3 scalar rules, `${env.NAME}`, and `--config-dir` merging.

This is the only module that imports `yaml`. It returns plain data (dicts, lists, scalars) plus
a map from every path to its source line, so later checks can point at `file:line`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath

import yaml

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.errors import Issue

_ENV_MACRO = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")
# An unset ${env.NAME} is replaced by this marker before parsing, so the walk can read it as
# empty and know which values came from it (YAML-safe in every scalar style, never typed).
_UNSET = "\u27e6env.{}\u27e7"
_UNSET_MARK = re.compile("\u27e6env\\.([A-Za-z_][A-Za-z0-9_]*)\u27e7")
_INDENT_PROBLEMS = (
    "expected <block end>",
    "could not find expected ':'",
    "did not find expected key",
    "did not find expected '-'",
)
_TAG = "tag:yaml.org,2002:"


class GoYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars, as Go's yaml.v3 reads them.

    A YAML 1.1 loader turns `on`/`off`/`yes`/`no` into booleans, which breaks command lines such
    as `--fit on`; here only true/false are booleans, and timestamps stay strings.
    """

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012


_RESOLVERS = (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("merge", r"^<<$", "<"),
)
for _name, _regex, _first in _RESOLVERS:
    GoYamlLoader.add_implicit_resolver(_TAG + _name, re.compile(_regex), list(_first))


@dataclass
class Document:
    """Loaded YAML: plain data plus the (line, file) of every path in it."""

    data: dict[str, object] = field(default_factory=dict)
    lines: dict[Path, tuple[int, str]] = field(default_factory=dict)


def scalar_value(tag: str, text: str) -> object:
    """The Python value of a resolved scalar (core schema; unknown tags keep the text)."""
    kind = tag.removeprefix(_TAG)
    if kind == "null":
        return None
    if kind == "bool":
        return text.lower() == "true"
    if kind == "int":
        return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)
    if kind == "float":
        lowered = text.lower().lstrip("+")
        if lowered.endswith("inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        return math.nan if lowered == ".nan" else float(text)
    return text


class _Builder:
    """Turns a composed node tree into plain data, recording lines and rejecting duplicates."""

    def __init__(self, file: str, out: Collector) -> None:
        self.file = file
        self.out = out
        self.lines: dict[Path, tuple[int, str]] = {}

    def build(self, node: yaml.Node, path: Path) -> object:
        self.lines.setdefault(path, (node.start_mark.line + 1, self.file))
        if isinstance(node, yaml.ScalarNode):
            if _UNSET_MARK.search(node.value):
                self.out.tainted.add(path)
                if _UNSET_MARK.fullmatch(node.value):
                    return None if node.style is None else ""  # `ttl: ${env.X}` reads as null
                return _UNSET_MARK.sub("", node.value)
            return scalar_value(node.tag, node.value)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._mapping(node, path)

    def _key(self, node: yaml.Node, path: Path) -> str:
        if not isinstance(node, yaml.ScalarNode):
            return "?"
        if _UNSET_MARK.search(node.value):
            key = _UNSET_MARK.sub("", node.value)
            self.out.tainted_keys.add((*path, key))
            return key
        return go_str(scalar_value(node.tag, node.value))

    def _mapping(self, node: yaml.Node, path: Path) -> dict[str, object]:
        result: dict[str, object] = {}
        merged: dict[str, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged.update(self._merge_sources(value_node, path))
                continue
            key = self._key(key_node, path)
            # A value is located at its key's line (a block mapping's value starts below it).
            self.lines.setdefault((*path, key), (key_node.start_mark.line + 1, self.file))
            if key in result:
                line = key_node.start_mark.line + 1
                self.out.error((*path, key), f"mapping key already defined (line {line})")
            result[key] = self.build(value_node, (*path, key))
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def _merge_sources(self, node: yaml.Node, path: Path) -> dict[str, object]:
        # `<<: *a` or `<<: [*a, *b]`: earlier sources win, explicit keys win over all.
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, object] = {}
        for source in reversed(sources):
            value = self.build(source, path)
            if isinstance(value, dict):
                merged.update(value)
            else:
                self.out.error(
                    path, "expected mapping for merge key <<, got " + type(value).__name__
                )
        return merged


def go_str(value: object) -> str:
    """A scalar as Go's `%v` prints it (true, 0.7, 3), used for keys and macro interpolation."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value).replace("inf", "+Inf").replace("nan", "NaN").replace("-+", "-")
    if value is None:
        return ""
    return str(value)


def parse_yaml(text: str, file: str, out: Collector) -> Document:
    """Parse one YAML text into a Document; a syntax error is recorded with its line, column,
    the line itself and a hint, and marks the collector broken."""
    try:
        node = yaml.compose(text, Loader=GoYamlLoader)
    except yaml.YAMLError as exc:
        out.broken = True
        out.errors.append(yaml_error_issue(text, file, exc))
        return Document()
    if node is None:
        return Document()
    builder = _Builder(file, out)
    data = builder.build(node, ())
    if not isinstance(data, dict):
        out.broken = True
        out.errors.append(_file_issue(file, "expected a mapping at the top level", 1))
        return Document()
    return Document(data, builder.lines)


def yaml_error_issue(text: str, file: str, exc: yaml.YAMLError) -> Issue:
    """`invalid YAML at line 3, column 1: <problem>; the line is "..." — <hint>`."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if "<stream end>" in (exc.problem or "") and exc.context_mark is not None:
            mark = exc.context_mark  # where the unclosed bracket or quote opened
        problem = exc.problem or str(exc)
        line, column = (None, None) if mark is None else (mark.line, mark.column)
    else:
        position = getattr(exc, "position", None)
        problem = str(exc).splitlines()[0]
        before = text[:position] if isinstance(position, int) else None
        line = None if before is None else before.count("\n")
        column = None if before is None else len(before) - (before.rfind("\n") + 1)
    if line is None or column is None:
        return _file_issue(file, f"invalid YAML: {problem}", None)
    lines = text.split("\n")
    shown = _UNSET_MARK.sub(r"${env.\1}", lines[line]) if line < len(lines) else ""
    message = (
        f"invalid YAML at line {line + 1}, column {column + 1}: {problem}; "
        f"the line is {json.dumps(shown, ensure_ascii=False)}"
    )
    hint = _yaml_hint(problem, shown)
    return _file_issue(file, f"{message} — {hint}" if hint else message, line + 1)


def _yaml_hint(problem: str, line: str) -> str:
    indent = line[: len(line) - len(line.lstrip())]
    if "\t" in indent or "'\\t'" in problem:
        return "YAML does not allow tabs for indentation — use spaces"
    if "mapping values are not allowed" in problem:
        return 'check the indentation of this line and the one above, or quote a value with ": "'
    if any(known in problem for known in _INDENT_PROBLEMS):
        return "check the indentation of this line and the one above"
    return ""


def _file_issue(file: str, message: str, line: int | None) -> Issue:
    return Issue("", message, line, file)


def _strings_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings_in(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings_in(item)]
    return []


def substitute_env(text: str, file: str, environ: Mapping[str, str], out: Collector) -> str:
    """Replace `${env.NAME}` in the raw text before parsing, as llama-swap does.

    Only references outside comments count (found by parsing once), so a commented-out line may
    name an unset variable. Values are escaped for double-quoted YAML; newlines are refused
    because they would change the document's structure.
    """
    if "${env." not in text:
        return text
    probe = Collector(default_file=file)
    parsed = parse_yaml(text, file, probe)
    # Unparsable before substitution (e.g. `[${env.X}]`): scan the raw text instead.
    scan = text if probe.errors else "\n".join(_strings_in(parsed.data))
    for name in dict.fromkeys(_ENV_MACRO.findall(scan)):
        line = _line_of(text, "${env." + name + "}")
        value = environ.get(name)
        if value is None:
            message = f"environment variable '{name}' is not set (${{env.{name}}})"
            out.errors.append(_file_issue(file, message, line))
            # Read as empty from here on; values that used it report nothing more (see Collector).
            text = text.replace("${env." + name + "}", _UNSET.format(name))
            continue
        if any(ch in value for ch in "\n\r\x00"):
            message = f"environment variable '{name}' contains newlines or null bytes, which are not allowed"
            out.errors.append(_file_issue(file, message, line))
            text = text.replace("${env." + name + "}", _UNSET.format(name))
            continue
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        text = text.replace("${env." + name + "}", escaped)
    return text


def _line_of(text: str, needle: str) -> int | None:
    """The first line using `needle` outside a comment (else the first line with it at all)."""
    lines = text.split("\n")
    hits = [n for n, line in enumerate(lines, 1) if needle in line]
    active = [n for n in hits if "#" not in lines[n - 1].split(needle, 1)[0]]
    found = active or hits
    return found[0] if found else None


def read_document(path: FsPath, environ: Mapping[str, str], out: Collector) -> Document:
    """Read, env-substitute and parse one file."""
    file = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        out.errors.append(_file_issue(str(path), f"cannot read config file: {exc.strerror}", None))
        out.broken = True
        return Document()
    return parse_yaml(substitute_env(text, file, environ, out), file, out)
