"""`models.<id>`: macro expansion, `${PORT}` assignment and typed fields -> ModelSpec.

Ports go to models in sorted id order from `startPort`, and only to models whose `cmd` uses
`${PORT}`. In the ModelSpec, `cmd` and `proxy` keep the placeholder (the runtime may pick another
free port); every other field has the assigned port substituted, as llama-swap does.

A model without `cmd` but with `proxy` is external: a server that is already running, which
swapgate never starts or stops (llama-swap loads these too). With neither, `cmd` is required.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from swapgate.proxy.config.extras import (
    params_by_id,
    read_model_extras,
    set_params,
    strip_params,
    warn_not_acted_on,
)
from swapgate.proxy.config.hints import FOREIGN_MODEL, closest_key
from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.macros import (
    MacroList,
    expand,
    expand_str,
    leftover_macros,
    parse_macros,
    scope_for,
    strip_comment_lines,
)
from swapgate.proxy.config.model import DEFAULT_MAX_CONNECTIONS, PORT_MACRO, JSONValue, ModelSpec
from swapgate.proxy.config.parallelism import warn_parallelism
from swapgate.proxy.config.validate import (
    read_bool,
    read_int,
    read_map,
    read_str,
    read_str_list,
    to_json,
    warn_unknown,
)

DEFAULT_PROXY = "http://localhost:${PORT}"
# Keys whose values take macros; anything else in a model is ignored by llama-swap.
EXPANDED_KEYS = (
    "cmd", "cmdStop", "proxy", "aliases", "env", "checkEndpoint", "ttl", "unloadTimeout",
    "unlisted", "useModelName", "name", "description", "metadata", "concurrencyLimit",
    "filters", "sendLoadingState", "capabilities", "timeouts", "compat", "maxConnections",
    "vram", "queueTimeout", "drainTimeout", "forwardApiKey",
)  # fmt: skip
KNOWN_KEYS = (*EXPANDED_KEYS, "macros")
COMFYUI_ID = "comfyui_auto"  # llama-swap's built-in ComfyUI model id
COMFYUI_MIN_CONCURRENCY = 50


@dataclass(frozen=True, slots=True)
class ModelDefaults:
    """Global values a model inherits."""

    global_ttl_s: int
    unload_timeout_s: int
    send_loading_state: bool
    health_check_timeout_s: int


def build_models(
    raw: object,
    macros: MacroList,
    start_port: int,
    defaults: ModelDefaults,
    out: Collector,
    top_level_keys: Iterable[str] = (),
    kept_ports: Mapping[str, int] | None = None,
) -> dict[str, ModelSpec]:
    """Every model of the `models:` section, in sorted id order (the port order).

    `top_level_keys` lets an unknown model key that belongs at the top level say so.
    `kept_ports` (on reload) gives models their previous port; the others take the next
    ports from `start_port` that none of those holds.
    """
    section = read_map(out, ("models",), raw)
    specs: dict[str, ModelSpec] = {}
    kept = kept_ports or {}
    taken = set(kept.values())
    next_port = start_port
    elsewhere = dict.fromkeys(top_level_keys, "top level")
    for model_id in sorted(section):
        while model_id not in kept and next_port in taken:
            next_port += 1
        port = kept.get(model_id, next_port)
        spec = _build_one(model_id, section[model_id], macros, port, defaults, out, elsewhere)
        if spec is not None:
            specs[model_id] = spec
            next_port += spec.port is not None and model_id not in kept
            warn_parallelism(spec, out)
    return specs


def _build_one(
    model_id: str,
    raw: object,
    macros: MacroList,
    port: int,
    defaults: ModelDefaults,
    out: Collector,
    elsewhere: Mapping[str, str],
) -> ModelSpec | None:
    path: Path = ("models", model_id)
    body = read_map(out, path, raw)
    warn_unknown(out, path, body, KNOWN_KEYS, foreign=FOREIGN_MODEL, elsewhere=elsewhere)
    warn_not_acted_on(body, path, out)
    scope = dict(
        scope_for(model_id, macros, parse_macros(body.get("macros"), (*path, "macros"), out))
    )
    tree = _expanded_tree(body, scope, path, out)
    cmd = tree.get("cmd")
    uses_port = isinstance(cmd, str) and PORT_MACRO in cmd
    if _blank(tree.get("proxy")) and not _blank(cmd):
        tree["proxy"] = DEFAULT_PROXY
    placeholders = {key: tree.get(key) for key in ("cmd", "proxy")}
    if uses_port:
        tree = {k: expand(v, {"PORT": port}) for k, v in tree.items()}
    _check_leftovers(tree, path, uses_port, sorted(scope), out)
    return _spec(model_id, tree, placeholders, port if uses_port else None, defaults, out)


def _blank(value: object) -> bool:
    """Not set: absent, null, or a string of spaces."""
    return value is None or (isinstance(value, str) and not value.strip())


def _expanded_tree(
    body: dict[str, object], scope: Mapping[str, object], path: Path, out: Collector
) -> dict[str, object]:
    table = {k: v for k, v in scope.items() if isinstance(v, str | int | float | bool)}
    tree: dict[str, object] = {}
    for key in EXPANDED_KEYS:
        if key not in body:
            continue
        value = body[key]
        if key in ("cmd", "cmdStop") and isinstance(value, str):
            value = strip_comment_lines(value)  # before expansion: a comment's macros are inert
        tree[key] = expand(value, table)
    filters = tree.get("filters")
    if isinstance(filters, dict) and isinstance(filters.get("setParamsByID"), dict):
        filters["setParamsByID"] = _expand_keys(
            filters["setParamsByID"], table, (*path, "filters", "setParamsByID"), out
        )
    return tree


def _expand_keys(
    section: dict[str, object],
    table: dict[str, str | int | float | bool],
    path: Path,
    out: Collector,
) -> dict[str, object]:
    # setParamsByID keys are model names clients send, so macros apply to them too.
    result: dict[str, object] = {}
    for key, value in section.items():
        new_key = expand_str(key, table)
        if new_key in result:
            out.error(
                (*path, key), f'keys resolve to the same value "{new_key}" — make them distinct'
            )
        result[new_key] = value
    return result


def _check_leftovers(
    tree: dict[str, object], path: Path, uses_port: bool, names: list[str], out: Collector
) -> None:
    """Macros left unexpanded. When cmd itself is broken (an unknown macro, an unset variable),
    a missing `${PORT}` is a consequence, not a second problem, so it is not reported."""
    leftovers = leftover_macros(tree, path)
    cmd_path = (*path, "cmd")
    cmd_broken = (
        out.derived(cmd_path)
        or isinstance(tree.get("cmd"), dict | list)  # reported as a type error
        or any(where == cmd_path for where, _ in leftovers)
    )
    has_cmd = not _blank(tree.get("cmd"))
    for where, name in leftovers:
        field = where[2] if len(where) > 2 else ""
        if name == "PID" and field == "cmdStop":
            continue  # substituted when the model is stopped
        if name != "PORT" or uses_port:
            close = closest_key(name, names)
            fix = f"did you mean ${{{close}}}?" if close else "define it under macros"
            out.error(where, f"unknown macro '${{{name}}}' — {fix}")
        elif cmd_broken:
            continue
        elif not has_cmd:
            out.error(where, "uses ${PORT} but there is no cmd — set proxy to the server's address")
        elif field == "proxy" and tree.get("proxy") == DEFAULT_PROXY:
            out.error(
                where,
                "proxy uses ${PORT} but cmd does not — add --port ${PORT} to cmd or set proxy",
            )
        else:
            out.error(
                where, "uses ${PORT} but cmd does not — ${PORT} is only assigned when cmd uses it"
            )


def _spec(
    model_id: str,
    tree: dict[str, object],
    placeholders: dict[str, object],
    port: int | None,
    defaults: ModelDefaults,
    out: Collector,
) -> ModelSpec | None:
    path: Path = ("models", model_id)
    cmd = read_str(out, (*path, "cmd"), placeholders["cmd"])
    external = not cmd.strip()  # a server swapgate never starts or stops, reached at `proxy`
    if external and _blank(placeholders["cmd"]) and _blank(placeholders["proxy"]):
        out.error(
            (*path, "cmd"),
            "required — the command that starts this model's server, "
            "or set proxy to use a server that is already running",
        )
    cmd_stop = read_str(out, (*path, "cmdStop"), tree.get("cmdStop"))
    if external and cmd_stop.strip():
        out.warn((*path, "cmdStop"), "ignored — a model without cmd is never stopped by swapgate")
    ttl = read_int(out, (*path, "ttl"), tree.get("ttl"), defaults.global_ttl_s, 0, "seconds")
    unload = read_int(out, (*path, "unloadTimeout"), tree.get("unloadTimeout"), 0, 0, "seconds")
    check = read_str(out, (*path, "checkEndpoint"), tree.get("checkEndpoint"), "/health")
    limit = read_int(out, (*path, "concurrencyLimit"), tree.get("concurrencyLimit"), 0, 0)
    if model_id == COMFYUI_ID and limit < COMFYUI_MIN_CONCURRENCY:
        limit = COMFYUI_MIN_CONCURRENCY
    raw = read_model_extras(model_id, tree, defaults.send_loading_state, path, out)
    raw["healthCheckTimeout"] = defaults.health_check_timeout_s
    filters = raw["filters"] if isinstance(raw["filters"], dict) else {}
    filters_path = (*path, "filters")
    return ModelSpec(
        id=model_id,
        cmd=cmd,
        cmd_stop=cmd_stop,
        external=external,
        proxy=read_str(out, (*path, "proxy"), placeholders["proxy"]),
        port=port,
        aliases=tuple(read_str_list(out, (*path, "aliases"), tree.get("aliases"))),
        env=_env(out, (*path, "env"), tree.get("env")),
        check_endpoint=None if check.strip().lower() == "none" else check,
        ttl_s=float(ttl),
        unload_timeout_s=float(unload or defaults.unload_timeout_s),
        unlisted=read_bool(out, (*path, "unlisted"), tree.get("unlisted"), False),
        use_model_name=read_str(out, (*path, "useModelName"), tree.get("useModelName")),
        name=read_str(out, (*path, "name"), tree.get("name")),
        description=read_str(out, (*path, "description"), tree.get("description")),
        metadata=_metadata(out, (*path, "metadata"), tree.get("metadata")),
        concurrency_limit=limit,
        max_connections=read_int(
            out, (*path, "maxConnections"), tree.get("maxConnections"), DEFAULT_MAX_CONNECTIONS, 1
        ),
        vram_mib=_optional_int(out, (*path, "vram"), tree.get("vram"), 1, "MiB"),
        forward_api_key=read_bool(out, (*path, "forwardApiKey"), tree.get("forwardApiKey"), False),
        queue_timeout_s=_optional_s(out, (*path, "queueTimeout"), tree.get("queueTimeout")),
        drain_timeout_s=_optional_s(out, (*path, "drainTimeout"), tree.get("drainTimeout")),
        send_loading_state=raw.get("sendLoadingState") is True,
        strip_params=strip_params(filters, filters_path, out),
        set_params=set_params(filters.get("setParams"), (*filters_path, "setParams"), out),
        params_by_id=params_by_id(filters, filters_path, out),
        raw=MappingProxyType(raw),
    )


def _optional_int(out: Collector, path: Path, raw: object, minimum: int, unit: str) -> int | None:
    """An integer field that may be absent (None: inherit or work it out)."""
    return None if raw is None else read_int(out, path, raw, minimum, minimum, unit)


def _optional_s(out: Collector, path: Path, raw: object) -> float | None:
    value = _optional_int(out, path, raw, 0, "seconds")
    return None if value is None else float(value)


def _env(out: Collector, path: Path, raw: object) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(read_str_list(out, path, raw)):
        name, sep, value = item.partition("=")
        if not sep or not name:
            out.error((*path, i), f'must be NAME=value, got "{item}"')
            continue
        pairs.append((name, value))
    return tuple(pairs)


def _metadata(out: Collector, path: Path, raw: object) -> MappingProxyType[str, JSONValue]:
    section = read_map(out, path, raw)
    return MappingProxyType({k: to_json(v) for k, v in section.items()})
