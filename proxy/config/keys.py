"""`keys` (swapgate only): API keys with a name, scopes, the models they may use and limits.

llama-swap's `apiKeys` keep their meaning (every key may do everything); each `keys` entry adds
one key that may do less:

    keys:
      - key: ${env.ALICE_KEY}      # required; unique across keys and apiKeys
        name: alice                # required, unique; what logs show instead of the key
        scopes: [inference]        # the default; any of inference, admin, logs
        models: [alpha, "qwen-*"]  # optional: names or fnmatch patterns; default every model
        maxConcurrent: 2           # optional: inference requests in flight at once
        requestsPerMinute: 60      # optional: a token bucket holding this many requests

Pure: checks the macro-expanded section and builds `KeySpec`s; `ModelAccess` answers which
names one key may use. Imports only the config layer.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from swapgate.proxy.config.hints import closest_key
from swapgate.proxy.config.issues import Collector, Path, describe, fmt_path
from swapgate.proxy.config.model import Config, ModelSpec
from swapgate.proxy.config.validate import read_int, read_map, read_str, read_str_list, warn_unknown
from swapgate.router import ExactText, Rule

KEYS_PATH: Path = ("keys",)
ENTRY_KEYS = ("key", "name", "scopes", "models", "maxConcurrent", "requestsPerMinute")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
_GLOB = re.compile(r"[*?\[]")


class KeyScope(enum.StrEnum):
    """What a key may reach: inference endpoints, management endpoints, or the logs."""

    INFERENCE = "inference"
    ADMIN = "admin"
    LOGS = "logs"


ALL_SCOPES = frozenset(KeyScope)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """One `keys` entry. `models` None allows every model; limits of 0 are no limit."""

    name: str
    key: str = field(repr=False)  # never in a repr, so never in a log line by accident
    scopes: frozenset[KeyScope] = frozenset({KeyScope.INFERENCE})
    models: tuple[str, ...] | None = None
    max_concurrent: int = 0
    requests_per_minute: int = 0


def client_names(
    models: Mapping[str, ModelSpec], aliases: Mapping[str, str], routes: Iterable[Rule]
) -> frozenset[str]:
    """The names a `models` entry may list: model ids, aliases and the exact model names of
    routes."""
    exact = {r.match.model.value for r in routes if isinstance(r.match.model, ExactText)}
    return frozenset({*models, *aliases, *exact})


def read_keys(
    raw: object, api_keys: Iterable[str], names: Collection[str], out: Collector
) -> tuple[KeySpec, ...]:
    """The `keys` list; `names` are the model names a client may send (ids, aliases, exact
    route names), for checking `models`."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        out.error(KEYS_PATH, f"expected list of key entries, got {describe(raw)}")
        return ()
    taken: dict[str, str] = {key: fmt_path(("apiKeys", i)) for i, key in enumerate(api_keys)}
    owners: dict[str, str] = {}
    specs: list[KeySpec] = []
    for i, body in enumerate(raw):
        spec = _entry((*KEYS_PATH, i), body, names, out)
        if spec is None:
            continue
        where: Path = (*KEYS_PATH, i)
        if spec.name in owners:
            out.error(
                (*where, "name"), f"already used by {owners[spec.name]}", subject=f'"{spec.name}"'
            )
        owners.setdefault(spec.name, fmt_path((*where, "name")))
        if spec.key in taken:  # the value itself is never printed
            out.error((*where, "key"), f"already used by {taken[spec.key]} — every key must differ")
        taken.setdefault(spec.key, fmt_path((*where, "key")))
        specs.append(spec)
    return tuple(specs)


def _entry(path: Path, raw: object, names: Collection[str], out: Collector) -> KeySpec | None:
    body = read_map(out, path, raw)
    if not body:
        if isinstance(raw, dict) or raw is None:
            out.error(path, "must set key and name")
        return None
    warn_unknown(out, path, body, ENTRY_KEYS)
    key = _key(out, (*path, "key"), body.get("key"))
    name = _name(out, (*path, "name"), body.get("name"))
    scopes = _scopes(out, (*path, "scopes"), body.get("scopes"))
    models = _models(out, (*path, "models"), body.get("models"), names)
    limit = read_int(out, (*path, "maxConcurrent"), body.get("maxConcurrent"), 0, 1, "requests")
    rpm = read_int(out, (*path, "requestsPerMinute"), body.get("requestsPerMinute"), 0, 1)
    if key is None or name is None:
        return None
    return KeySpec(
        name=name,
        key=key,
        scopes=scopes,
        models=models,
        max_concurrent=limit,
        requests_per_minute=rpm,
    )


def _key(out: Collector, path: Path, raw: object) -> str | None:
    if raw is None:
        out.error(path, "required — the secret clients send, e.g. key: ${env.ALICE_KEY}")
        return None
    if not isinstance(raw, str):  # a number would be read as its text: refuse, it is a secret
        out.error(
            path, f"expected string, got {describe(raw).split(' ')[0]} — put the key in quotes"
        )
        return None
    if not raw.strip():
        out.error(path, "must not be empty")
        return None
    if any(ch.isspace() for ch in raw):
        out.error(path, "must not contain spaces")
        return None
    return raw


def _name(out: Collector, path: Path, raw: object) -> str | None:
    if raw is None:
        out.error(path, "required — the name logs show for this key, e.g. name: alice")
        return None
    name = read_str(out, path, raw)
    if not _NAME.match(name):
        out.error(
            path,
            "must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or "
            f"digit, got {describe(name)}",
        )
        return None
    return name


def _scopes(out: Collector, path: Path, raw: object) -> frozenset[KeyScope]:
    if raw is None:
        return frozenset({KeyScope.INFERENCE})
    values = read_str_list(out, path, raw)
    if isinstance(raw, list) and not values:
        out.error(path, f"must not be empty — list one or more of: {', '.join(KeyScope)}")
    scopes: set[KeyScope] = set()
    for i, value in enumerate(values):
        try:
            scopes.add(KeyScope(value))
        except ValueError:
            close = closest_key(value, list(KeyScope))
            hint = f' (did you mean "{close}"?)' if close else ""
            out.error((*path, i), f'must be one of: {", ".join(KeyScope)}; got "{value}"{hint}')
    return frozenset(scopes)


def _models(
    out: Collector, path: Path, raw: object, names: Collection[str]
) -> tuple[str, ...] | None:
    if raw is None:
        return None
    patterns = read_str_list(out, path, raw)
    if isinstance(raw, list) and not patterns:
        out.error(path, "must not be empty — leave models out to allow every model")
    known = ", ".join(sorted(names))
    for i, pattern in enumerate(patterns):
        if not _GLOB.search(pattern):
            if pattern not in names:
                out.error((*path, i), f'unknown model "{pattern}"; known models: {known}')
        elif not any(fnmatchcase(name, pattern) for name in names):
            out.warn((*path, i), f'pattern "{pattern}" matches no model; known models: {known}')
    return tuple(patterns)


class ModelAccess:
    """Which names one key may use. A model is allowed when its id or one of its aliases
    matches a pattern, and then under every one of its names; a name that is no model's (a
    route's) when it matches a pattern itself."""

    __slots__ = ("_allowed", "_known", "_patterns", "model_ids")

    def __init__(self, patterns: Iterable[str], config: Config) -> None:
        self._patterns = tuple(patterns)
        names: Mapping[str, str] = {**{m: m for m in config.models}, **config.alias_index}
        self.model_ids = frozenset({model for name, model in names.items() if self._matches(name)})
        self._allowed = frozenset(name for name, model in names.items() if model in self.model_ids)
        self._known = frozenset(names)

    def _matches(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self._patterns)

    def allows(self, name: str) -> bool:
        """True when the key may send `name` as its model."""
        if name in self._allowed:
            return True
        return name not in self._known and self._matches(name)
