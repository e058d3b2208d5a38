"""`--print-config`: the effective config as JSON, with llama-swap's key names and shapes.

Ports are shown assigned and macros expanded, as llama-swap's own view of a config. Secrets
(`apiKeys`, each `keys[].key`, each peer's `apiKey`) are masked unless the caller asks to show
them.
"""

from __future__ import annotations

from collections.abc import Mapping

from swapgate.proxy.config.keys import KeyScope, KeySpec
from swapgate.proxy.config.model import Config, JSONValue, ModelSpec

SHORT_SECRET = 8  # keys this long or shorter are shown as *** only


def mask_secret(key: str) -> str:
    """`sk-…7f3a`: the first 3 and last 4 characters; `***` for keys of 8 characters or fewer."""
    if not key:
        return key
    return "***" if len(key) <= SHORT_SECRET else f"{key[:3]}…{key[-4:]}"


def effective_json(config: Config, *, show_secrets: bool = False) -> dict[str, object]:
    """The effective config; every value is JSON-serialisable. Keys are masked unless
    `show_secrets`."""
    result: dict[str, object] = {
        "healthCheckTimeout": _num(config.health_check_timeout_s),
        "logLevel": config.log_level,
        "startPort": config.start_port,
        "globalTTL": _num(config.global_ttl_s),
        "unloadTimeout": _num(config.unload_timeout_s),
        "includeAliasesInList": config.include_aliases_in_list,
        "sendLoadingState": config.send_loading_state,
        "maxRequestBytes": config.max_request_bytes,
        "maxBufferedRequestBytes": config.max_buffered_request_bytes,
        "connections": _connections(config),
        "shutdownTimeout": _num(config.shutdown_timeout_s),
        "rewriteResponseModel": config.rewrite_response_model,
        "allowedHosts": list(config.browser.allowed_hosts),
        "cors": {"allowOrigins": list(config.browser.allow_origins)},
    }
    result.update(config.raw_sections)
    if not show_secrets:
        result.update(_masked(config.raw_sections))
    result["keys"] = [_key_json(spec, show_secrets=show_secrets) for spec in config.keys]
    routing = config.raw_sections.get("routing")
    if isinstance(routing, dict):
        result["effective_router"] = routing.get("effective_router")
        result["scheduler"] = routing.get("scheduler")
    result["models"] = {
        mid: model_json(spec, config) for mid, spec in sorted(config.models.items())
    }
    return result


def model_json(spec: ModelSpec, config: Config) -> dict[str, JSONValue]:
    """One model as llama-swap shows it: `${PORT}` replaced by the assigned port."""
    cmd, proxy = spec.with_port(spec.port)
    aliases: list[JSONValue] = [a for a, mid in config.alias_index.items() if mid == spec.id]
    result: dict[str, JSONValue] = {
        "cmd": cmd,
        "cmdStop": spec.cmd_stop,
        "proxy": proxy,
        "aliases": aliases,
        "env": [f"{name}={value}" for name, value in spec.env],
        "checkEndpoint": "none" if spec.check_endpoint is None else spec.check_endpoint,
        "ttl": _num(spec.ttl_s),
        "unloadTimeout": _num(spec.unload_timeout_s),
        "unlisted": spec.unlisted,
        "useModelName": spec.use_model_name,
        "name": spec.name,
        "description": spec.description,
        "metadata": dict(spec.metadata) or None,
        "concurrencyLimit": spec.concurrency_limit,
        "maxConnections": spec.max_connections,
        "forwardApiKey": spec.forward_api_key,
        "port": spec.port,
    }
    result.update(spec.raw)
    return result


def _masked(sections: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
    """apiKeys and peers with every key masked (the sections themselves are not changed)."""
    masked: dict[str, JSONValue] = {}
    keys = sections.get("apiKeys")
    if isinstance(keys, list):
        masked["apiKeys"] = [mask_secret(k) if isinstance(k, str) else k for k in keys]
    peers = sections.get("peers")
    if isinstance(peers, dict):
        masked["peers"] = {name: _masked_peer(body) for name, body in peers.items()}
    return masked


def _key_json(spec: KeySpec, *, show_secrets: bool) -> dict[str, JSONValue]:
    """One `keys` entry; limits of 0 (none) print as null."""
    return {
        "name": spec.name,
        "key": spec.key if show_secrets else mask_secret(spec.key),
        "scopes": [scope.value for scope in KeyScope if scope in spec.scopes],
        "models": None if spec.models is None else list(spec.models),
        "maxConcurrent": spec.max_concurrent or None,
        "requestsPerMinute": spec.requests_per_minute or None,
    }


def _masked_peer(body: JSONValue) -> JSONValue:
    key = body.get("apiKey") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(key, str):
        return body
    return {**body, "apiKey": mask_secret(key)}


def _connections(config: Config) -> dict[str, JSONValue]:
    """The `connections` section; `limit` null means the default (8192, fewer open files)."""
    c = config.connections
    return {
        "limit": c.limit,
        "headerTimeout": _num(c.header_timeout_s),
        "bodyIdleTimeout": _num(c.body_idle_timeout_s),
        "bodyTimeout": _num(c.body_timeout_s),
        "keepAlive": c.keep_alive,
    }


def _num(value: float) -> int | float:
    """Whole seconds print as integers, as llama-swap's int fields do."""
    return int(value) if value.is_integer() else value
