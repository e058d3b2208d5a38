"""Per-model llama-swap sections swapgate keeps as data: filters, capabilities, timeouts, compat.

They are checked the way llama-swap checks them (so a config it rejects is rejected here too),
given llama-swap's defaults, and kept in `ModelSpec.raw` for --print-config and later features.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.model import JSONValue
from swapgate.proxy.config.validate import (
    read_bool,
    read_int,
    read_map,
    read_str,
    read_str_list,
    to_json,
)

MODALITIES = ("text", "audio", "image")
MODEL_TIMEOUTS = {
    "connect": 30,
    "responseHeader": 0,
    "tlsHandshake": 10,
    "expectContinue": 1,
    "idleConn": 90,
    "keepalive": 30,
}
PEER_TIMEOUTS = {**MODEL_TIMEOUTS, "responseHeader": 60}
COMFYUI_ID = "comfyui_auto"
PROTECTED_PARAM = "model"  # swapgate routes on it: never stripped, never set (llama-swap)
_NEVER_SET = f'"{PROTECTED_PARAM}" is never set — swapgate routes on it; use useModelName to change the name sent upstream'
# Per-model llama-swap keys swapgate reads but does not act on yet: what happens instead.
NOT_ACTED_ON = {
    "capabilities": "not acted on yet; kept and shown by --print-config, but /v1/models does "
    "not list it and requests are not checked against it",
    "compat": "not acted on; swapgate does not relay WebSocket upgrades, so ignoreWebsockets "
    "changes nothing",
}
# The timeouts the relay has no separate setting for (the others take effect: connect,
# responseHeader, idleConn, keepalive).
UNUSED_TIMEOUTS = {
    "tlsHandshake": "not used on its own: timeouts.connect covers the TLS handshake too",
    "expectContinue": "not used: swapgate does not forward Expect: 100-continue",
}
Params = Mapping[str, JSONValue]


def warn_not_acted_on(tree: Mapping[str, object], path: Path, out: Collector) -> None:
    """One warning for each per-model key swapgate keeps but does not act on."""
    for key, message in NOT_ACTED_ON.items():
        if tree.get(key) is not None:
            out.warn((*path, key), message)
    timeouts = tree.get("timeouts")
    for key, instead in UNUSED_TIMEOUTS.items():
        if isinstance(timeouts, dict) and timeouts.get(key) is not None:
            out.warn((*path, "timeouts", key), instead)


def read_model_extras(
    model_id: str, tree: dict[str, object], send_loading_state: bool, path: Path, out: Collector
) -> dict[str, JSONValue]:
    """The raw per-model sections, checked and with defaults filled in."""
    compat = read_map(out, (*path, "compat"), tree.get("compat"))
    ignore_ws = read_bool(
        out, (*path, "compat", "ignoreWebsockets"), compat.get("ignoreWebsockets"), False
    )
    return {
        "filters": read_filters(tree.get("filters"), (*path, "filters"), out),
        "capabilities": _capabilities(tree.get("capabilities"), (*path, "capabilities"), out),
        "timeouts": read_timeouts(tree.get("timeouts"), (*path, "timeouts"), MODEL_TIMEOUTS, out),
        "compat": {"ignoreWebsockets": ignore_ws or model_id == COMFYUI_ID},
        "sendLoadingState": read_bool(
            out, (*path, "sendLoadingState"), tree.get("sendLoadingState"), send_loading_state
        ),
    }


def read_filters(raw: object, path: Path, out: Collector) -> dict[str, JSONValue]:
    """`filters`: stripParams (legacy `strip_params`), setParams, setParamsByID."""
    section = read_map(out, path, raw)
    strip = section.get("stripParams", section.get("strip_params"))
    by_id = read_map(out, (*path, "setParamsByID"), section.get("setParamsByID"))
    for key, params in by_id.items():
        read_map(out, (*path, "setParamsByID", key), params)
    set_params = section.get("setParams")
    read_map(out, (*path, "setParams"), set_params)
    return {
        "stripParams": read_str(out, (*path, "stripParams"), strip),
        "setParams": to_json(set_params),
        "setParamsByID": to_json(by_id) if by_id else None,
    }


def _capabilities(raw: object, path: Path, out: Collector) -> dict[str, JSONValue]:
    section = read_map(out, path, raw)
    result: dict[str, JSONValue] = {}
    for key in ("in", "out"):
        if section.get(key) is None:
            result[key] = None
            continue
        values = read_str_list(out, (*path, key), section.get(key))
        for i, value in enumerate(values):
            if value not in MODALITIES:
                out.error(
                    (*path, key, i), f'must be one of: {", ".join(MODALITIES)}; got "{value}"'
                )
        result[key] = list(values)
    result["tools"] = read_bool(out, (*path, "tools"), section.get("tools"), False)
    result["reranker"] = read_bool(out, (*path, "reranker"), section.get("reranker"), False)
    result["context"] = read_int(out, (*path, "context"), section.get("context"), 0, 0, "tokens")
    return result


def read_timeouts(
    raw: object, path: Path, defaults: dict[str, int], out: Collector
) -> dict[str, JSONValue]:
    """`timeouts`: upstream HTTP timeouts in seconds; an explicit 0 means no timeout."""
    section = read_map(out, path, raw)
    return {
        key: read_int(out, (*path, key), section.get(key), default, 0, "seconds")
        for key, default in defaults.items()
    }


def strip_params(filters: Mapping[str, JSONValue], path: Path, out: Collector) -> tuple[str, ...]:
    """`stripParams` as names: split on commas, trimmed, de-duplicated, sorted, never `model`."""
    names = {name.strip() for name in str(filters.get("stripParams") or "").split(",")}
    if PROTECTED_PARAM in names:
        out.warn(
            (*path, "stripParams"), f'"{PROTECTED_PARAM}" is never stripped — swapgate routes on it'
        )
    return tuple(sorted(names - {"", PROTECTED_PARAM}))


def set_params(raw: JSONValue, path: Path, out: Collector) -> Params:
    """One `setParams` mapping without `model` (warned about and dropped)."""
    if not isinstance(raw, dict):
        return MappingProxyType({})
    if PROTECTED_PARAM in raw:
        out.warn((*path, PROTECTED_PARAM), _NEVER_SET)
    return MappingProxyType({k: v for k, v in raw.items() if k != PROTECTED_PARAM})


def params_by_id(
    filters: Mapping[str, JSONValue], path: Path, out: Collector
) -> Mapping[str, Params]:
    """`setParamsByID`: the name a client asked for (an alias of this model) -> its params."""
    raw = filters.get("setParamsByID")
    entries = raw.items() if isinstance(raw, dict) else ()
    return MappingProxyType(
        {name: set_params(params, (*path, "setParamsByID", name), out) for name, params in entries}
    )
