"""The validated, immutable config: what every other layer reads. Pure data, stdlib only.

Durations are float seconds (`*_s`); YAML keys keep llama-swap's names (see validate.py).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from swapgate.router import Rule

if TYPE_CHECKING:
    from swapgate.proxy.config.keys import KeySpec
    from swapgate.proxy.config.matrix import MatrixProgram

DEFAULT_START_PORT = 5800
DEFAULT_HEALTH_CHECK_TIMEOUT_S = 120.0
DEFAULT_UNLOAD_TIMEOUT_S = 10.0
DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_BUFFERED_REQUEST_BYTES = 256 * 1024 * 1024
DEFAULT_CONNECTION_LIMIT = 8192
DEFAULT_HEADER_TIMEOUT_S = 30.0
DEFAULT_BODY_IDLE_TIMEOUT_S = 30.0
DEFAULT_BODY_TIMEOUT_S = 300.0
DEFAULT_MAX_CONNECTIONS = 4
DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0
DEFAULT_QUEUE_TIMEOUT_S = 600.0
DEFAULT_MAX_WAIT_S = 30.0
PORT_MACRO = "${PORT}"

# JSON-like values kept as written in YAML (metadata, raw sections reported by --print-config).
JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]


def _empty_mapping() -> Mapping[str, JSONValue]:
    return MappingProxyType({})


def _empty_params() -> Mapping[str, Mapping[str, JSONValue]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """One configured model: how to start its server and how to reach it.

    `cmd` and `proxy` have every macro expanded except `${PORT}`, which stays a placeholder so
    the lifecycle can move the server to a free port at spawn time. `port` is the port assigned
    at load (sorted model-id order from `startPort`, only where `cmd` uses `${PORT}`), else None.
    A model without `cmd` is `external`: a server that is already running at `proxy`, which
    swapgate never starts or stops.

    The request filters (llama-swap's `filters`) are typed here for the HTTP layer to apply:
    `strip_params` are body keys to remove, `set_params` keys to set, and `params_by_id` the
    keys to set when the client asked for one particular name (a key of it is also an alias of
    this model). None of them ever holds "model".
    """

    id: str
    cmd: str  # as written (comment lines removed), macros expanded but ${PORT}; "" if external
    external: bool = False  # no cmd: never started or stopped by swapgate
    cmd_stop: str = ""  # "" = SIGTERM the process group; ${PID} is substituted at stop time
    proxy: str  # upstream base URL, ${PORT} still a placeholder where cmd uses it
    port: int | None = None
    aliases: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    check_endpoint: str | None = "/health"  # None: the YAML said `none`, no health check
    ttl_s: float = 0.0  # 0 = never unload for idleness
    unload_timeout_s: float = DEFAULT_UNLOAD_TIMEOUT_S  # SIGTERM -> SIGKILL grace
    unlisted: bool = False
    use_model_name: str = ""
    name: str = ""
    description: str = ""
    metadata: Mapping[str, JSONValue] = field(default_factory=_empty_mapping)
    concurrency_limit: int = 0  # 0 = unlimited
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # pooled upstream connections (swapgate)
    forward_api_key: bool = False  # swapgate: pass the client's key headers to the server
    vram_mib: int | None = None  # configured GPU memory figure; None: estimate or measure
    queue_timeout_s: float | None = None  # None: the top-level queueTimeout; 0 = no bound
    drain_timeout_s: float | None = None  # None: the top-level drainTimeout; 0 = no bound
    send_loading_state: bool = False
    strip_params: tuple[str, ...] = ()  # filters.stripParams: trimmed, sorted, never "model"
    set_params: Mapping[str, JSONValue] = field(default_factory=_empty_mapping)
    params_by_id: Mapping[str, Mapping[str, JSONValue]] = field(default_factory=_empty_params)
    # llama-swap per-model sections swapgate keeps as data (filters, capabilities, timeouts,
    # compat, sendLoadingState, macros), macros expanded, for --print-config and later features.
    raw: Mapping[str, JSONValue] = field(default_factory=_empty_mapping)

    def with_port(self, port: int | None) -> tuple[str, str]:
        """(cmd, proxy) with `${PORT}` replaced by `port` (unchanged when port is None)."""
        if port is None:
            return self.cmd, self.proxy
        text = str(port)
        return self.cmd.replace(PORT_MACRO, text), self.proxy.replace(PORT_MACRO, text)


class RouterKind(enum.StrEnum):
    """The placement policy (`routing.router.use`)."""

    GROUP = "group"
    MATRIX = "matrix"
    FIT = "fit"


@dataclass(frozen=True, slots=True, kw_only=True)
class FitConfig:
    """`routing.router.settings.fit`: the memory budget; None = NVML total less reserve."""

    budget_mib: int | None = None
    reserve_mib: int = 0
    keep: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Scheduling:
    """How requests wait and which models may run together."""

    router: RouterKind = RouterKind.GROUP
    max_wait_s: float = DEFAULT_MAX_WAIT_S  # routing.scheduler.settings.fifo.maxWaitSeconds
    priority: Mapping[str, int] = field(default_factory=dict)  # ...fifo.priority
    fit: FitConfig = field(default_factory=FitConfig)
    matrix: MatrixProgram | None = None
    queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S  # 0 = wait without bound
    drain_timeout_s: float = 0.0  # 0 = a swap waits for in-flight requests (llama-swap)


@dataclass(frozen=True, slots=True, kw_only=True)
class Connections:
    """`connections`: how many clients may connect and how long each may take to send."""

    limit: int | None = None  # None: DEFAULT_CONNECTION_LIMIT, less if open files are fewer
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S  # also the idle keep-alive timeout
    body_idle_timeout_s: float = DEFAULT_BODY_IDLE_TIMEOUT_S  # 0 = no bound
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S  # 0 = no bound
    keep_alive: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class BrowserAccess:
    """`allowedHosts` and `cors.allowOrigins` (swapgate only): which Host names and which
    other origins' pages may reach swapgate. Normalised: lower case, `.suffix` entries kept,
    `"*"` alone means any."""

    allowed_hosts: tuple[str, ...] = ()  # beyond loopback names and the listen address
    allow_origins: tuple[str, ...] = ()  # "scheme://host[:port]", default ports dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivitySettings:
    """llama-swap's `store.path` (SQLite file for the activity log; None: memory only) and
    `metricsMaxInMemory` (records kept in memory)."""

    store_path: str | None = None
    in_memory: int = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole effective config. `raw_sections` keeps sections handled elsewhere (groups,
    hooks, routes, ...) as plain data so --print-config can show them."""

    source: str = "config"
    health_check_timeout_s: float = DEFAULT_HEALTH_CHECK_TIMEOUT_S
    log_level: str = "info"
    start_port: int = DEFAULT_START_PORT
    global_ttl_s: float = 0.0
    unload_timeout_s: float = DEFAULT_UNLOAD_TIMEOUT_S
    include_aliases_in_list: bool = False
    send_loading_state: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_buffered_request_bytes: int = DEFAULT_MAX_BUFFERED_REQUEST_BYTES  # all bodies at once
    connections: Connections = field(default_factory=Connections)
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S
    rewrite_response_model: bool = False  # swapgate: answer with the requested model name
    macros: tuple[tuple[str, str], ...] = ()
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    alias_index: Mapping[str, str] = field(default_factory=dict)  # alias -> model id
    raw_sections: Mapping[str, JSONValue] = field(default_factory=_empty_mapping)
    routes: tuple[Rule, ...] = ()  # validated `routes` rules, compiled by the HTTP layer
    api_keys: tuple[str, ...] = ()  # non-empty: every endpoint but /health needs one of them
    keys: tuple[KeySpec, ...] = ()  # swapgate's named, scoped keys (config/keys.py)
    preload: tuple[str, ...] = ()  # model ids started in the background at startup
    scheduling: Scheduling = field(default_factory=Scheduling)
    browser: BrowserAccess = field(default_factory=BrowserAccess)
    activity: ActivitySettings = field(default_factory=ActivitySettings)

    def queue_timeout_s(self, model: ModelSpec) -> float:
        value = model.queue_timeout_s
        return self.scheduling.queue_timeout_s if value is None else value

    def drain_timeout_s(self, model: ModelSpec) -> float:
        value = model.drain_timeout_s
        return self.scheduling.drain_timeout_s if value is None else value

    def resolve(self, name: str) -> ModelSpec | None:
        """The model a client name refers to: a model id first, then an alias."""
        spec = self.models.get(name)
        if spec is not None:
            return spec
        model_id = self.alias_index.get(name)
        return None if model_id is None else self.models[model_id]
