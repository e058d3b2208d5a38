"""Which models may run together and which name picks which model: routing, profiles, selectors.

swapgate does not act on these yet; they are checked as llama-swap checks them at load (so the
same configs are rejected) and kept as data for --print-config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.model import JSONValue
from swapgate.proxy.config.validate import json_map, read_int, read_map, read_str, read_str_list

ROUTERS = ("group", "matrix", "fit")  # fit: swapgate's memory-aware placement
STRATEGIES = ("warm", "spillover", "pin")


def read_routing(
    data: Mapping[str, object], model_ids: set[str], out: Collector
) -> dict[str, JSONValue]:
    """`routing` plus the legacy top-level `groups`/`matrix`; returns the effective choice."""
    routing = read_map(out, ("routing",), data.get("routing"))
    router = read_map(out, ("routing", "router"), routing.get("router"))
    settings = read_map(out, ("routing", "router", "settings"), router.get("settings"))
    legacy = bool(data.get("groups")) or data.get("matrix") is not None
    if data.get("matrix") is not None and data.get("groups"):
        out.error(("matrix",), "config cannot use both 'groups' and 'matrix' — keep one")
    if legacy and router:
        out.error(
            ("routing", "router"),
            "config uses both the legacy top-level groups/matrix and routing.router — migrate them under routing.router.settings",
        )
    use = read_str(
        out,
        ("routing", "router", "use"),
        router.get("use"),
        "matrix" if data.get("matrix") is not None else "group",
    )
    if use not in ROUTERS:
        out.error(
            ("routing", "router", "use"),
            f'unknown router: must be one of: {", ".join(ROUTERS)}; got "{use}"',
        )
    if use == "matrix" and router and settings.get("matrix") is None:
        out.error(
            ("routing", "router", "settings"),
            "routing.router.settings.matrix is not set — add it or use: group",
        )
    scheduler = read_map(out, ("routing", "scheduler"), routing.get("scheduler"))
    sched_settings = read_map(out, ("routing", "scheduler", "settings"), scheduler.get("settings"))
    fifo = read_map(out, ("routing", "scheduler", "settings", "fifo"), sched_settings.get("fifo"))
    priority_path: Path = ("routing", "scheduler", "settings", "fifo", "priority")
    for name, value in read_map(out, priority_path, fifo.get("priority")).items():
        if name not in model_ids:
            out.error(
                (*priority_path, name),
                f'unknown model "{name}"; known models: {", ".join(sorted(model_ids))}',
            )
        read_int(out, (*priority_path, name), value, 0)
    result = json_map(routing)
    scheduler_json = json_map(scheduler)
    result["scheduler"] = {
        **scheduler_json,
        "use": read_str(out, ("routing", "scheduler", "use"), scheduler.get("use"), "fifo"),
    }
    result["effective_router"] = use
    return result


def read_profiles(raw: object, names: Mapping[str, str], out: Collector) -> JSONValue:
    """`profiles.<id>`: a description and pins (name -> model, alias, peer model or selector)."""
    if raw is None:
        return None
    profiles: dict[str, JSONValue] = {}
    for pid, body in read_map(out, ("profiles",), raw).items():
        path: Path = ("profiles", pid)
        if not isinstance(body, dict):
            out.error(
                path,
                "profile must be a mapping with description and pins; the legacy list syntax is no longer supported",
            )
            continue
        pins = read_map(out, (*path, "pins"), body.get("pins"))
        if not pins:
            out.error((*path, "pins"), "must contain at least one entry")
        resolved: dict[str, JSONValue] = {}
        for pin, target in pins.items():
            text = "" if target is None else read_str(out, (*path, "pins", pin), target)
            if text and text not in names:
                out.error((*path, "pins", pin), f'references unknown model "{text}"')
            resolved[pin] = text
        profiles[pid] = {
            "description": read_str(out, (*path, "description"), body.get("description")),
            "pins": resolved,
        }
    return profiles


def read_selectors(
    raw: object, names: Mapping[str, str], models: Mapping[str, set[str]], out: Collector
) -> JSONValue:
    """`selectors.<id>`: a strategy over target models. `names` maps every client name to
    "local:<id>" or "peer:<peer>/<model>"; `models` maps local model ids to their groups."""
    if raw is None:
        return None
    section = read_map(out, ("selectors",), raw)
    selectors: dict[str, JSONValue] = {}
    for sid, body in section.items():
        path: Path = ("selectors", sid)
        spec = read_map(out, path, body)
        if not sid.strip():
            out.error(path, "selector names cannot be empty")
        elif sid in models:
            out.error(path, f'selector "{sid}": name conflicts with model ID models.{sid}')
        elif names.get(sid, "").startswith("local:"):
            out.error(path, f'selector "{sid}": name conflicts with model alias of {names[sid]}')
        strategy = read_str(out, (*path, "strategy"), spec.get("strategy"))
        if not strategy:
            out.error((*path, "strategy"), "required — strategy is required (warm or spillover)")
        elif strategy not in STRATEGIES:
            out.error(
                (*path, "strategy"),
                f'unknown strategy: must be one of: {", ".join(STRATEGIES)}; got "{strategy}"',
            )
        targets = read_str_list(out, (*path, "targets"), spec.get("targets"))
        if not targets:
            out.error((*path, "targets"), "targets must contain at least one entry")
        _check_targets(path, strategy, targets, names, section, models, out)
        settings = read_map(out, (*path, "settings"), spec.get("settings"))
        spill = read_int(out, (*path, "settings", "spillover"), settings.get("spillover"), 1)
        if spill < 1:
            out.error(
                (*path, "settings", "spillover"), f"settings.spillover must be >= 1, got {spill}"
            )
        entry = json_map(spec)
        selectors[sid] = {
            **entry,
            "targets": list(targets),
            "settings": {**json_map(settings), "spillover": spill},
        }
    return selectors


def _check_targets(
    path: Path,
    strategy: str,
    targets: list[str],
    names: Mapping[str, str],
    selectors: Mapping[str, object],
    models: Mapping[str, set[str]],
    out: Collector,
) -> None:
    seen: set[str] = set()
    locals_: list[str] = []
    for i, target in enumerate(targets):
        where = (*path, "targets", i)
        if target in selectors and target not in names:
            out.error(where, f'"{target}": selector chaining is not supported')
            continue
        if target not in names:
            out.error(where, f'references unknown model "{target}"')
            continue
        resolved = names[target]
        if resolved in seen:
            out.error(where, f'duplicate resolved model "{resolved.split(":", 1)[1]}"')
        seen.add(resolved)
        if resolved.startswith("local:"):
            locals_.append(resolved[6:])
        elif strategy == "warm":
            out.error(where, f'"{target}" must resolve to a local model for strategy "warm"')
    if strategy == "spillover" and len(locals_) > 1:
        shared = set.intersection(*(models.get(m, set()) for m in locals_))
        if not shared:
            out.error((*path, "targets"), "spillover targets must share a group with swap: false")


def matrix_sets(raw: object, model_ids: set[str]) -> dict[str, set[str]]:
    """model id -> names of the matrix alternatives it appears in (`A & B | C` is two).

    Only used to tell whether spillover targets can run together; an expression this reader
    does not understand puts every model in one shared set rather than refusing the config.
    """
    matrix = raw if isinstance(raw, dict) else {}
    variables = json_map(matrix.get("vars"))
    sets = json_map(matrix.get("sets"))
    found: dict[str, set[str]] = {m: set() for m in model_ids}
    for name, expr in sets.items():
        if not isinstance(expr, str) or any(ch in expr for ch in "()*"):
            return {m: {"*"} for m in model_ids}
        for i, alternative in enumerate(expr.split("|")):
            for token in re.findall(r"[^\s&|]+", alternative):
                model = variables.get(token, token)
                found.setdefault(str(model), set()).add(f"{name}/{i}")
    return found
