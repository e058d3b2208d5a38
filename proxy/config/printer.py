"""`--print-config`: the effective config as JSON, with llama-swap's key names and shapes.

Ports are shown assigned and macros expanded, as llama-swap's own view of a config.
"""

from __future__ import annotations

from proxy.config.model import Config, JSONValue, ModelSpec


def effective_json(config: Config) -> dict[str, object]:
    """The effective config; every value is JSON-serialisable."""
    result: dict[str, object] = {
        "healthCheckTimeout": _num(config.health_check_timeout_s),
        "logLevel": config.log_level,
        "startPort": config.start_port,
        "globalTTL": _num(config.global_ttl_s),
        "unloadTimeout": _num(config.unload_timeout_s),
        "includeAliasesInList": config.include_aliases_in_list,
        "sendLoadingState": config.send_loading_state,
        "maxRequestBytes": config.max_request_bytes,
        "shutdownTimeout": _num(config.shutdown_timeout_s),
        "rewriteResponseModel": config.rewrite_response_model,
    }
    result.update(config.raw_sections)
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
        "port": spec.port,
    }
    result.update(spec.raw)
    return result


def _num(value: float) -> int | float:
    """Whole seconds print as integers, as llama-swap's int fields do."""
    return int(value) if value.is_integer() else value
