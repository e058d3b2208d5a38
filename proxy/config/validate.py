"""Typed field readers for the config walk and the top-level (global) settings.

Each reader takes the raw YAML value and returns the typed value or the default; on a problem
it records one issue at the field's path and returns the default, so the walk goes on and
reports everything at once. Null means "not set", as in llama-swap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from swapgate.proxy.config.hints import unknown_key_message
from swapgate.proxy.config.issues import Collector, Path, describe
from swapgate.proxy.config.load import go_str
from swapgate.proxy.config.model import JSONValue


class LogLevel(StrEnum):
    """`logLevel` values."""

    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class LogToStdout(StrEnum):
    """`logToStdout` values: which logs llama-swap copies to stdout."""

    PROXY = "proxy"
    UPSTREAM = "upstream"
    BOTH = "both"
    NONE = "none"


def read_int(
    out: Collector,
    path: Path,
    raw: object,
    default: int,
    minimum: int | None = None,
    unit: str = "",
) -> int:
    """An integer field; bools and floats are type errors (yaml.v3 refuses them too)."""
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int):
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        else:
            out.error(path, f"expected integer, got {describe(raw)}")
            return default
    if minimum is not None and raw < minimum:
        suffix = f" {unit}" if unit else ""
        out.error(path, f"must be >= {minimum}{suffix}, got {raw}")
        return default
    return raw


def read_bool(out: Collector, path: Path, raw: object, default: bool) -> bool:
    """A boolean field: only true/false (yes/no/on/off are strings, as in yaml.v3)."""
    if raw is None:
        return default
    if not isinstance(raw, bool):
        out.error(path, f"expected bool, got {describe(raw)} — use true or false")
        return default
    return raw


def read_str(out: Collector, path: Path, raw: object, default: str = "") -> str:
    """A string field; other scalars are read as their text, like yaml.v3 does."""
    if raw is None:
        return default
    if isinstance(raw, dict | list):
        out.error(path, f"expected string, got {describe(raw)}")
        return default
    return raw if isinstance(raw, str) else go_str(raw)


def read_choice(
    out: Collector, path: Path, raw: object, choices: Iterable[str], default: str
) -> str:
    """A string that must be one of `choices`."""
    value = read_str(out, path, raw, default)
    allowed = list(choices)
    if value not in allowed:
        out.error(path, f'must be one of: {", ".join(allowed)}; got "{value}"')
        return default
    return value


def read_str_list(out: Collector, path: Path, raw: object) -> list[str]:
    """A list of strings (null is an empty list)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        out.error(path, f"expected list of strings, got {describe(raw)}")
        return []
    return [read_str(out, (*path, i), item) for i, item in enumerate(raw)]


def read_map(out: Collector, path: Path, raw: object) -> dict[str, object]:
    """A mapping (null is empty)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        out.error(path, f"expected mapping, got {describe(raw)}")
        return {}
    return raw


def warn_unknown(
    out: Collector,
    path: Path,
    section: Mapping[str, object],
    known: Iterable[str],
    *,
    foreign: Mapping[str, str] | None = None,
    elsewhere: Mapping[str, str] | None = None,
) -> None:
    """Warn about keys llama-swap and swapgate ignore, with a hint where one is sure to help.

    `foreign` maps keys other tools use (normalised, see hints.py) to advice; `elsewhere` maps
    keys that belong at another level to where they go.
    """
    known_list = list(known)
    for key in section:
        if key not in known_list:
            out.warn((*path, key), unknown_key_message(key, known_list, foreign, elsewhere))


def to_json(value: object) -> JSONValue:
    """Plain YAML data as JSONValue (YAML only produces these types)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def json_map(value: object) -> dict[str, JSONValue]:
    """A mapping as JSON data; anything else is an empty mapping."""
    converted = to_json(value) if isinstance(value, dict) else None
    return converted if isinstance(converted, dict) else {}
