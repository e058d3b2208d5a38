"""Top-level llama-swap sections swapgate keeps as data for now (groups, hooks, peers, ...).

They get llama-swap's defaults and the checks llama-swap makes at load, so a config it rejects
is rejected here too, and are reported by --print-config in llama-swap's shape.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path as FsPath

from swapgate.proxy.config.extras import PEER_TIMEOUTS, read_filters, read_timeouts
from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.model import JSONValue, ModelSpec
from swapgate.proxy.config.validate import read_bool, read_map, read_str, read_str_list, to_json

DEFAULT_GROUP = "(default)"
DEFAULT_SESSION_HEADERS = ["X-Session-ID", "X-Litellm-Session-Id"]
DEFAULT_IGNORE_PATHS = [r".*\.(js|json|css|png|gif|jpg|jpeg|ico|txt)$"]


def read_groups(
    raw: object, path: Path, models: Mapping[str, ModelSpec], out: Collector
) -> dict[str, JSONValue]:
    """Groups with llama-swap's defaults, plus `(default)` holding every ungrouped model."""
    groups: dict[str, JSONValue] = {}
    owner: dict[str, str] = {}
    for gid, body in read_map(out, path, raw).items():
        section = read_map(out, (*path, gid), body)
        members = read_str_list(out, (*path, gid, "members"), section.get("members"))
        for i, member in enumerate(members):
            where = (*path, gid, "members", i)
            if member not in models:
                out.warn(
                    where, f'unknown model "{member}"; known models: {", ".join(sorted(models))}'
                )
            elif member in owner:
                out.error(
                    where,
                    f'model member {member} is used in multiple groups: "{member}" already in {fmt_group(owner[member])}',
                )
            owner.setdefault(member, gid)
        groups[gid] = {
            "swap": read_bool(out, (*path, gid, "swap"), section.get("swap"), True),
            "exclusive": read_bool(out, (*path, gid, "exclusive"), section.get("exclusive"), True),
            "persistent": read_bool(
                out, (*path, gid, "persistent"), section.get("persistent"), False
            ),
            "members_sorted": list[JSONValue](sorted(members)),
        }
    rest = sorted(m for m in models if m not in owner)
    groups[DEFAULT_GROUP] = {
        "swap": True,
        "exclusive": True,
        "persistent": False,
        "members_sorted": list[JSONValue](rest),
    }
    return groups


def fmt_group(gid: str) -> str:
    """A group's path, for messages that name two places."""
    return f"groups.{gid}" if re.fullmatch(r"[A-Za-z_][\w-]*", gid) else f'groups["{gid}"]'


def read_hooks(
    raw: object, path: Path, resolve: Mapping[str, str], out: Collector
) -> dict[str, JSONValue]:
    """`hooks.on_startup.preload`: model names (aliases resolved; unknown ones dropped with a
    warning, as llama-swap skips them)."""
    section = read_map(out, path, raw)
    startup = read_map(out, (*path, "on_startup"), section.get("on_startup"))
    names = read_str_list(out, (*path, "on_startup", "preload"), startup.get("preload"))
    for i, name in enumerate(names):
        if name.strip() not in resolve:
            known = ", ".join(sorted(resolve))
            out.warn(
                (*path, "on_startup", "preload", i),
                f'unknown model "{name}"; known models: {known} — it will not be preloaded',
            )
    preload = [resolve[n.strip()] for n in names if n.strip() in resolve]
    return {"on_startup": {"preload": list(preload) or None}}


def read_api_keys(raw: object, path: Path, out: Collector) -> list[str] | None:
    """`apiKeys`: non-empty keys without spaces."""
    keys = read_str_list(out, path, raw)
    for i, key in enumerate(keys):
        if not key.strip():
            out.error((*path, i), "must not be empty")
        elif " " in key:
            out.error((*path, i), "must not contain spaces")
    return keys or None


def read_peers(raw: object, path: Path, out: Collector) -> dict[str, JSONValue]:
    """`peers`: remote llama-swap/OpenAI servers and the models they serve."""
    peers: dict[str, JSONValue] = {}
    for name, body in read_map(out, path, raw).items():
        section = read_map(out, (*path, name), body)
        peers[name] = {
            "proxy": read_str(out, (*path, name, "proxy"), section.get("proxy")),
            "apiKey": read_str(out, (*path, name, "apiKey"), section.get("apiKey")),
            "models": list(read_str_list(out, (*path, name, "models"), section.get("models"))),
            "filters": read_filters(section.get("filters"), (*path, name, "filters"), out),
            "timeouts": read_timeouts(
                section.get("timeouts"), (*path, name, "timeouts"), PEER_TIMEOUTS, out
            ),
        }
    return peers


def read_store(raw: object, path: Path, out: Collector) -> dict[str, JSONValue] | None:
    """`store.path`: a file in a folder that exists and is writable."""
    if raw is None:
        return None
    section = read_map(out, path, raw)
    file = read_str(out, (*path, "path"), section.get("path"))
    if not file.strip():
        out.error((*path, "path"), "store.path must not be empty")
    elif not os.access(FsPath(file).parent, os.W_OK):
        out.error(
            (*path, "path"), f"directory {FsPath(file).parent} is not writable or does not exist"
        )
    return {"path": file}


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


def parse_duration(text: str) -> float | None:
    """Go duration text (`1m30s`, `5s`) in seconds; None when it is not one."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def read_performance(raw: object, path: Path, out: Collector) -> dict[str, JSONValue]:
    """`performance`: sampling switch and interval (at least 5s)."""
    section = read_map(out, path, raw)
    every = 5.0
    if section.get("every") is not None:
        text = read_str(out, (*path, "every"), section.get("every"))
        parsed = parse_duration(text)
        if parsed is None:
            out.error((*path, "every"), f'expected a duration such as "30s", got "{text}"')
        elif parsed < 5:
            out.error((*path, "every"), f"every must be at least 5s, got {text}")
        else:
            every = parsed
    return {
        "disabled": read_bool(out, (*path, "disabled"), section.get("disabled"), False),
        "every_seconds": every,
    }


def read_ui(raw: object, path: Path, out: Collector) -> dict[str, JSONValue]:
    """`ui.activity.session_id`: trimmed, de-duplicated header names (explicit [] disables)."""
    activity = read_map(out, (*path, "activity"), read_map(out, path, raw).get("activity"))
    if "session_id" not in activity or activity["session_id"] is None:
        return {"activity": {"session_id": list(DEFAULT_SESSION_HEADERS)}}
    seen: dict[str, str] = {}
    for name in read_str_list(out, (*path, "activity", "session_id"), activity["session_id"]):
        if name.strip():
            seen.setdefault(name.strip().lower(), name.strip())
    return {"activity": {"session_id": list(seen.values())}}


def read_upstream(raw: object, path: Path, out: Collector) -> dict[str, JSONValue]:
    """`upstream.ignorePaths`: regexes of paths not forwarded to a model."""
    section = read_map(out, path, raw)
    patterns = (
        read_str_list(out, (*path, "ignorePaths"), section.get("ignorePaths"))
        or DEFAULT_IGNORE_PATHS
    )
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            out.error((*path, "ignorePaths", i), f"invalid regex: {exc.msg} at position {exc.pos}")
    return {"ignorePaths": list(patterns)}


def raw_json(raw: object) -> JSONValue:
    """A section kept exactly as written."""
    return to_json(raw)
