"""From the merged YAML document to the immutable Config: globals, models, cross-checks.

swapgate's own top-level keys (not in llama-swap):
  maxRequestBytes       largest request body accepted, bytes (int >= 1, default 100 MiB)
  shutdownTimeout       seconds to drain on shutdown before killing servers (>= 0, default 10)
  rewriteResponseModel  answer with the model name the client asked for (bool, default false)
  routes                request routing rules, kept raw here and compiled by the router layer
  keys                  named API keys with scopes, models and limits (keys.py)
  allowedHosts, cors    which Host names and which other origins may reach it (security.py)
  maxBufferedRequestBytes, connections   client limits and timeouts (connections.py)
and per model `maxConnections` (pooled upstream connections, int >= 1, default 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from swapgate.proxy.config import sections, selection
from swapgate.proxy.config.connections import read_buffered_bytes, read_connections
from swapgate.proxy.config.hints import FOREIGN_TOP, closest_key
from swapgate.proxy.config.issues import Collector, Path, fmt_path, parse_path
from swapgate.proxy.config.keys import client_names, read_keys
from swapgate.proxy.config.load import go_str
from swapgate.proxy.config.macros import expand, leftover_macros, parse_macros, resolve_chain
from swapgate.proxy.config.model import (
    DEFAULT_MAX_REQUEST_BYTES,
    ActivitySettings,
    Config,
    JSONValue,
    ModelSpec,
)
from swapgate.proxy.config.models import KNOWN_KEYS as MODEL_KEYS
from swapgate.proxy.config.models import ModelDefaults, build_models
from swapgate.proxy.config.routes import parse_routes
from swapgate.proxy.config.scheduling import read_scheduling
from swapgate.proxy.config.security import read_browser_access
from swapgate.proxy.config.selection import matrix_sets
from swapgate.proxy.config.validate import (
    LogLevel,
    LogToStdout,
    read_bool,
    read_choice,
    read_int,
    read_str,
    to_json,
    warn_unknown,
)
from swapgate.router import Rule

MIN_HEALTH_CHECK_TIMEOUT_S = 15
CORE_KEYS = (
    "healthCheckTimeout", "logLevel", "startPort", "globalTTL", "unloadTimeout",
    "includeAliasesInList", "sendLoadingState", "macros", "models",
    "maxRequestBytes", "shutdownTimeout", "rewriteResponseModel", "routes",
    "queueTimeout", "drainTimeout", "maxBufferedRequestBytes", "connections",
    "allowedHosts", "cors", "keys",
)  # fmt: skip
# llama-swap sections swapgate acts on (groups, matrix, routing: the scheduler and placement;
# hooks: preload; apiKeys: auth).
ACTED_ON_KEYS = ("groups", "hooks", "apiKeys", "matrix", "routing", "store", "metricsMaxInMemory")
# llama-swap sections swapgate reads and reports but does not act on yet (one warning each).
LATER_KEYS = (
    "peers", "profiles", "selectors",
    "logRequests", "logToStdout", "logTimeFormat", "captureBuffer",
    "performance", "ui", "upstream",
)  # fmt: skip
NOT_EXPANDED = ("macros", "models", "routes")
_KEPT = "kept and shown by --print-config"
# What happens instead, for the LATER_KEYS a user is most likely to rely on.
NOT_ACTED_ON = {
    "peers": f"not acted on yet; requests for peer models get 404 model_not_found, {_KEPT}",
    "profiles": f"not acted on yet; requests for a profile name get 404 model_not_found, {_KEPT}",
    "selectors": f"not acted on yet; requests for a selector name get 404 model_not_found, {_KEPT}",
}
NO_MODELS = (
    "required — at least one model; this config loads (llama-swap accepts it) but serves nothing"
)


def build_config(
    data: dict[str, object],
    source: str,
    out: Collector,
    kept_ports: Mapping[str, int] | None = None,
) -> Config:
    """Check everything, collecting issues in `out`; the result is only valid without errors.
    `kept_ports`: the ports models had before a reload (see build_models)."""
    top_keys = (*CORE_KEYS, *ACTED_ON_KEYS, *LATER_KEYS)
    elsewhere = dict.fromkeys(MODEL_KEYS, "model level (models.<id>)")
    warn_unknown(out, (), data, top_keys, foreign=FOREIGN_TOP, elsewhere=elsewhere)
    declared = parse_macros(data.get("macros"), ("macros",), out)
    macros = resolve_chain(declared)
    table = dict(macros)
    top = {
        k: (v if k in NOT_EXPANDED else expand(v, table))
        for k, v in data.items()
        if k in (*CORE_KEYS, *ACTED_ON_KEYS, *LATER_KEYS)
    }
    for where, name in leftover_macros({k: v for k, v in top.items() if k not in NOT_EXPANDED}, ()):
        close = closest_key(name, table)
        fix = f"did you mean ${{{close}}}?" if close else "define it under macros"
        out.error(where, f"unknown macro '${{{name}}}' — {fix}")
    health = read_int(
        out, ("healthCheckTimeout",), top.get("healthCheckTimeout"), 120, None, "seconds"
    )
    if health < MIN_HEALTH_CHECK_TIMEOUT_S:
        out.warn(
            ("healthCheckTimeout",),
            f"raised to {MIN_HEALTH_CHECK_TIMEOUT_S} seconds (the minimum), got {health}",
        )
        health = MIN_HEALTH_CHECK_TIMEOUT_S
    start_port = read_int(out, ("startPort",), top.get("startPort"), 5800, 1)
    defaults = ModelDefaults(
        global_ttl_s=read_int(out, ("globalTTL",), top.get("globalTTL"), 0, 0, "seconds"),
        unload_timeout_s=read_int(
            out, ("unloadTimeout",), top.get("unloadTimeout"), 10, 0, "seconds"
        ),
        send_loading_state=read_bool(
            out, ("sendLoadingState",), top.get("sendLoadingState"), False
        ),
        health_check_timeout_s=health,
    )
    models = build_models(
        data.get("models"), declared, start_port, defaults, out, top_keys, kept_ports
    )
    if data.get("models") in (None, {}):
        out.warn(("models",), NO_MODELS)
    alias_index = _alias_index(models, out)
    raw = _raw_sections(top, models, alias_index, out)
    raw["macros"] = [[name, value] for name, value in macros]
    rewrite_default = read_bool(
        out, ("rewriteResponseModel",), top.get("rewriteResponseModel"), False
    )
    routes = _routes(top.get("routes"), models, alias_index, rewrite_default, out)
    max_request_bytes = read_int(
        out, ("maxRequestBytes",), top.get("maxRequestBytes"), DEFAULT_MAX_REQUEST_BYTES, 1, "bytes"
    )
    return Config(
        source=source,
        health_check_timeout_s=float(health),
        log_level=read_choice(
            out, ("logLevel",), top.get("logLevel"), [x.value for x in LogLevel], "info"
        ),
        start_port=start_port,
        global_ttl_s=float(defaults.global_ttl_s),
        unload_timeout_s=float(defaults.unload_timeout_s),
        include_aliases_in_list=read_bool(
            out, ("includeAliasesInList",), top.get("includeAliasesInList"), False
        ),
        send_loading_state=defaults.send_loading_state,
        max_request_bytes=max_request_bytes,
        max_buffered_request_bytes=read_buffered_bytes(top, max_request_bytes, out),
        connections=read_connections(top, out),
        shutdown_timeout_s=float(
            read_int(out, ("shutdownTimeout",), top.get("shutdownTimeout"), 10, 0, "seconds")
        ),
        rewrite_response_model=rewrite_default,
        routes=tuple(routes),
        api_keys=_api_keys(raw.get("apiKeys")),
        keys=read_keys(
            top.get("keys"),
            _api_keys(raw.get("apiKeys")),
            client_names(models, alias_index, routes),
            out,
        ),
        preload=_preload(raw.get("hooks")),
        scheduling=read_scheduling(top, set(models), out),
        browser=read_browser_access(top, out),
        activity=_activity(raw),
        macros=tuple(
            (name, str(value) if isinstance(value, str) else to_str(value))
            for name, value in macros
        ),
        models=MappingProxyType(models),
        alias_index=MappingProxyType(alias_index),
        raw_sections=MappingProxyType(raw),
    )


def _activity(raw: Mapping[str, JSONValue]) -> ActivitySettings:
    """`store.path` and `metricsMaxInMemory`, already validated in the raw sections."""
    store = raw.get("store")
    path = store.get("path") if isinstance(store, dict) else None
    in_memory = raw.get("metricsMaxInMemory")
    return ActivitySettings(
        store_path=path if isinstance(path, str) and path.strip() else None,
        in_memory=in_memory if isinstance(in_memory, int) and in_memory >= 0 else 1000,
    )


def _routes(
    raw: object,
    models: Mapping[str, ModelSpec],
    aliases: Mapping[str, str],
    rewrite_default: bool,
    out: Collector,
) -> list[Rule]:
    """The `routes` rules, with their problems reported at their YAML paths."""
    names = {**{model_id: model_id for model_id in models}, **aliases}
    rules, errors, warnings = parse_routes(raw, names, rewrite_default)
    for issue in errors:
        out.error(parse_path(issue.path), issue.message)
    for issue in warnings:
        out.warn(parse_path(issue.path), issue.message)
    return rules


def _groups_section(top: Mapping[str, object]) -> tuple[object, Path]:
    """Legacy top-level `groups`, else `routing.router.settings.groups` (llama-swap's new form)."""
    if top.get("groups") is not None:
        return top.get("groups"), ("groups",)
    routing = top.get("routing")
    router = routing.get("router") if isinstance(routing, dict) else None
    settings = router.get("settings") if isinstance(router, dict) else None
    nested = settings.get("groups") if isinstance(settings, dict) else None
    return nested, ("routing", "router", "settings", "groups")


def _api_keys(raw: object) -> tuple[str, ...]:
    return tuple(str(key) for key in raw) if isinstance(raw, list) else ()


def _preload(raw: object) -> tuple[str, ...]:
    startup = raw.get("on_startup") if isinstance(raw, dict) else None
    names = startup.get("preload") if isinstance(startup, dict) else None
    return tuple(str(name) for name in names) if isinstance(names, list) else ()


def to_str(value: object) -> str:
    """A macro value as text."""
    return go_str(value)


def _alias_index(models: Mapping[str, ModelSpec], out: Collector) -> dict[str, str]:
    """alias -> model id; a name may belong to one model only and must not be another model's id.

    Aliases and setParamsByID keys (names a client may send) share one namespace; every clash
    reads `<path> "<name>": already used by <where it was first used>`.
    """
    index: dict[str, str] = {}
    first: dict[str, str] = {}  # name -> the place that took it
    for model_id, spec in models.items():
        names: list[tuple[Path, str]] = [
            (("models", model_id, "aliases", i), alias) for i, alias in enumerate(spec.aliases)
        ]
        names += [
            (("models", model_id, "filters", "setParamsByID", key), key)
            for key in spec.params_by_id
        ]
        for path, name in names:
            if name == model_id or index.get(name) == model_id:
                if path[2] == "aliases":  # a setParamsByID key naming the model is no alias
                    index.setdefault(name, model_id)
                continue
            taken = fmt_path(("models", name)) if name in models else first.get(name)
            if taken is not None:
                out.error(path, f"already used by {taken}", subject=f'"{name}"')
                continue
            index[name] = model_id
            first[name] = fmt_path(path)
    return index


def _raw_sections(
    top: dict[str, object], models: Mapping[str, ModelSpec], aliases: dict[str, str], out: Collector
) -> dict[str, JSONValue]:
    for key in LATER_KEYS:
        if top.get(key) is not None:
            later = f"not supported yet; {_KEPT}, swapgate does not act on it"
            out.warn((key,), NOT_ACTED_ON.get(key, later))
    names = {**{a: f"local:{m}" for a, m in aliases.items()}, **{m: f"local:{m}" for m in models}}
    peers = sections.read_peers(top.get("peers"), ("peers",), out)
    for peer, body in peers.items():
        for model in body.get("models", []) if isinstance(body, dict) else []:  # type: ignore[union-attr]
            names.setdefault(str(model), f"peer:{peer}/{model}")
            qualified = f"{peer}/{model}"
            if qualified in names and not names[qualified].startswith("peer:"):
                out.error(
                    ("peers", peer, "models"),
                    f'"{qualified}": conflicts with fully qualified peer model name',
                )
            names[qualified] = f"peer:{qualified}"
    routing = selection.read_routing(top, set(models), out)
    groups = (
        sections.read_groups(*_groups_section(top), models, out)
        if top.get("matrix") is None
        else {}
    )
    swap_free: dict[str, set[str]] = {m: set() for m in models}
    for gid, body in groups.items():
        if isinstance(body, dict) and body.get("swap") is False:
            for member in body.get("members_sorted", []):  # type: ignore[union-attr]
                swap_free.setdefault(str(member), set()).add(gid)
    if top.get("matrix") is not None:
        swap_free = matrix_sets(top.get("matrix"), set(models))
    selectors = selection.read_selectors(top.get("selectors"), names, swap_free, out)
    if isinstance(selectors, dict):
        names.update({s: f"selector:{s}" for s in selectors})
    return {
        "groups": groups,
        "hooks": sections.read_hooks(
            top.get("hooks"), ("hooks",), {**aliases, **{m: m for m in models}}, out
        ),
        "apiKeys": to_json(sections.read_api_keys(top.get("apiKeys"), ("apiKeys",), out)),
        "peers": peers,
        "matrix": to_json(top.get("matrix")),
        "routing": routing,
        "profiles": selection.read_profiles(top.get("profiles"), names, out),
        "selectors": selectors,
        "store": sections.read_store(top.get("store"), ("store",), out),
        "performance": sections.read_performance(top.get("performance"), ("performance",), out),
        "ui": sections.read_ui(top.get("ui"), ("ui",), out),
        "upstream": sections.read_upstream(top.get("upstream"), ("upstream",), out),
        "routes": to_json(top.get("routes")),
        "logRequests": read_bool(out, ("logRequests",), top.get("logRequests"), False),
        "logToStdout": read_choice(
            out, ("logToStdout",), top.get("logToStdout"), [x.value for x in LogToStdout], "proxy"
        ),
        "logTimeFormat": read_str(out, ("logTimeFormat",), top.get("logTimeFormat")),
        "metricsMaxInMemory": read_int(
            out, ("metricsMaxInMemory",), top.get("metricsMaxInMemory"), 1000, 0
        ),
        "captureBuffer": read_int(out, ("captureBuffer",), top.get("captureBuffer"), 5, 0),
    }
