"""diff(old, new) -> ConfigDelta: which models a reload keeps, restarts, stops and adds. Pure.

A model is *changed* when anything that decides how its server runs or is reached differs:
`cmd`, `cmdStop`, `proxy`, `env`, `checkEndpoint`, `maxConnections`, `timeouts`, ... Settings
read per request or per decision (aliases, filters, names, TTL, queue and drain bounds,
limits, memory figure) are *live*: they change without a restart. The port number a model
was given is never a change (the loader keeps it across reloads, see `kept_ports`).
Imports only the config model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from swapgate.proxy.config.model import Config, JSONValue, ModelSpec

# ModelSpec fields applied to a running server without restarting it.
LIVE_FIELDS = frozenset(
    {
        "port",  # the assigned number; kept across reloads by the loader
        "aliases",
        "unlisted",
        "use_model_name",
        "name",
        "description",
        "metadata",
        "ttl_s",
        "unload_timeout_s",
        "concurrency_limit",
        "vram_mib",
        "queue_timeout_s",
        "drain_timeout_s",
        "send_loading_state",
        "strip_params",
        "set_params",
        "params_by_id",
        "forward_api_key",
    }
)
# Keys of ModelSpec.raw that are live too (filters are also typed above; healthCheckTimeout
# is the top-level value, read at the next start).
LIVE_RAW_KEYS = frozenset({"filters", "capabilities", "sendLoadingState", "healthCheckTimeout"})
# Top-level settings read once when swapgate starts: a reload reports a change as a warning.
RESTART_ONLY = {
    "connections": "connections",
    "browser": "allowedHosts/cors",
    "max_buffered_request_bytes": "maxBufferedRequestBytes",
    "log_level": "logLevel",
}


@dataclass(frozen=True, slots=True)
class ConfigDelta:
    """Model ids by what a reload does to them, each tuple sorted."""

    unchanged: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    def summary(self) -> str:
        """`2 added (a, b), 1 changed (c)`; `no model changed` when nothing moves."""
        parts = [
            f"{len(ids)} {word} ({', '.join(ids)})"
            for word, ids in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if ids
        ]
        return ", ".join(parts) or "no model changed"


def diff(old: Config, new: Config) -> ConfigDelta:
    """What changes for each model going from `old` to `new`."""
    unchanged: list[str] = []
    changed: list[str] = []
    for model_id in sorted(old.models.keys() & new.models.keys()):
        same = run_settings(old.models[model_id]) == run_settings(new.models[model_id])
        (unchanged if same else changed).append(model_id)
    return ConfigDelta(
        unchanged=tuple(unchanged),
        changed=tuple(changed),
        removed=tuple(sorted(old.models.keys() - new.models.keys())),
        added=tuple(sorted(new.models.keys() - old.models.keys())),
    )


def run_settings(spec: ModelSpec) -> dict[str, object]:
    """Everything about `spec` that needs a restart when it changes, as comparable data."""
    settings: dict[str, object] = {
        f.name: getattr(spec, f.name)
        for f in dataclasses.fields(spec)
        if f.name not in LIVE_FIELDS and f.name != "raw"
    }
    settings["raw"] = _run_raw(spec.raw)
    return settings


def _run_raw(raw: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
    return {key: value for key, value in raw.items() if key not in LIVE_RAW_KEYS}


def kept_ports(config: Config) -> dict[str, int]:
    """model id -> assigned port, for the next load: a model keeps its `${PORT}` across
    reloads, and a model added in the middle of the sorted list shifts nobody."""
    return {mid: spec.port for mid, spec in config.models.items() if spec.port is not None}


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """The top-level settings that differ but only take effect when swapgate restarts."""
    return [key for attr, key in RESTART_ONLY.items() if getattr(old, attr) != getattr(new, attr)]
