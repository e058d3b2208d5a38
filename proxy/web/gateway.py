"""Gateway: what every handler shares (the config snapshot, the backend pool, upstream clients,
logs) and the reload that replaces the snapshot."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine

from blacksheep import Request, Response, StreamedContent

from swapgate.proxy.activity.log import ActivityLog
from swapgate.proxy.activity.store import ActivityStore
from swapgate.proxy.config.diff import ConfigDelta
from swapgate.proxy.config.keys import KeyScope
from swapgate.proxy.config.model import Config
from swapgate.proxy.config.watch import ConfigSources
from swapgate.proxy.errors import ModelNotFound, ShuttingDown, SwapgateError
from swapgate.proxy.gpu import GpuProbe
from swapgate.proxy.lifecycle.pool import BackendPool
from swapgate.proxy.loghub import LogHub
from swapgate.proxy.metrics import GatewayMetrics
from swapgate.proxy.routestats import RouteStats
from swapgate.proxy.web.auth import Keyring, required_scope
from swapgate.proxy.web.envelope import error_response, is_anthropic_path
from swapgate.proxy.web.reloader import Reloader, ReloadResult
from swapgate.proxy.web.snapshot import Snapshot, compile_snapshot, pin, pinned
from swapgate.proxy.web.upstream import UpstreamClients
from swapgate.router import Router

log = logging.getLogger("swapgate.web")

INJECT_DELAY_ENV = "SWAPGATE_TEST_INJECT_DELAY_MS"
Handler = Callable[[Request], Awaitable[Response]]


class Gateway:
    """The running gateway's shared parts; created at app start, closed at app stop."""

    def __init__(self, config: Config, hub: LogHub) -> None:
        # Replaced whole by a reload: a request that reads it once sees one config.
        self.snapshot: Snapshot = compile_snapshot(config)
        self.hub = hub
        self.gpu = GpuProbe()
        self.pool = BackendPool(config, on_output=hub.write, gpu=self.gpu)
        self.metrics = GatewayMetrics(self.pool)
        self.pool.events.on(self.metrics.on_event)
        self.clients = UpstreamClients()
        self.route_stats = RouteStats()
        self.activity = _activity_log(config)
        self.pool.events.on(self.activity.on_event)
        self.reloader: Reloader | None = None  # set by enable_reload()
        self._preloading: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # A test switch for the benchmark gate: proves the gate notices added latency.
        self.inject_delay_s = float(os.environ.get(INJECT_DELAY_ENV, "0") or 0) / 1000
        self._stopped = False

    @property
    def config(self) -> Config:
        """The current config (a request decided against a snapshot reads `snapshot_of`)."""
        return self.snapshot.config

    @property
    def router(self) -> Router:
        return self.snapshot.router

    @property
    def keyring(self) -> Keyring:
        return self.snapshot.keyring

    @property
    def router_reads_headers(self) -> bool:
        return self.snapshot.router_reads_headers

    def snapshot_of(self, request: Request) -> Snapshot:
        """The snapshot `request` is decided against (the current one if none was pinned)."""
        return pinned(request) or self.snapshot

    def redecide(self, request: Request) -> Snapshot:
        """After a reload, decide a waiting `request` again against the current snapshot; its
        key must still be valid there (401/403 otherwise)."""
        snapshot = self.snapshot
        pin(request, snapshot)
        if snapshot.keyring:
            snapshot.keyring.admit(request, required_scope(request.scope["path"]))
        return snapshot

    async def start(self) -> None:
        await self.pool.start()
        if self.config.preload:
            self._preloading = asyncio.create_task(self._preload(self.config.preload))
        if self.reloader is not None:
            self.reloader.start()

    # ---- reloading ----------------------------------------------------------------------

    def enable_reload(self, sources: ConfigSources) -> None:
        """Let `reload()` (the API, SIGHUP) and, with `sources.watch`, file changes read
        these sources again. Call before the app starts."""
        self.reloader = Reloader(sources, lambda: self.config, self._install, self.pool.events)

    async def reload(self, trigger: str) -> ReloadResult:
        """Read the config again and apply it (see reloader.py); the result says how it went."""
        if self.reloader is None:
            msg = "swapgate was not started from config files; reloading is not possible"
            raise ShuttingDown(msg)
        if self.pool.shutting_down:
            msg = "swapgate is shutting down; the config is not reloaded"
            raise ShuttingDown(msg)
        return await self.reloader.reload(trigger)

    def request_reload(self, trigger: str) -> None:
        """Reload in the background (SIGHUP); the outcome is logged and published."""
        if self.reloader is not None and not self.pool.shutting_down:
            self.reloader.request(trigger)

    def _install(self, snapshot: Snapshot, delta: ConfigDelta) -> None:
        # One synchronous stretch: the snapshot and the pool switch together.
        self.snapshot = snapshot
        self.activity.resize(snapshot.config.activity.in_memory)
        store = self.activity.store
        if snapshot.config.activity.store_path != (store.path if store else None):
            log.warning("store.path changed: the activity store changes when swapgate restarts")
        restart = self.pool.apply(snapshot.config, delta)
        if restart:  # changed, preloaded and running before: start them again now
            self.spawn(self._preload(restart))

    def spawn(self, work: Coroutine[object, object, None]) -> None:
        """Run `work` in the background for as long as the gateway runs."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _preload(self, models: tuple[str, ...]) -> None:
        """hooks.on_startup.preload: start these models in the background, in order."""
        for model in models:
            log.info("preloading %s", model)
            try:
                lease = await self.pool.acquire(model)
            except SwapgateError as exc:
                log.error("preloading %s failed: %s", model, exc.message)
            else:
                lease.release()

    async def drain(self, timeout_s: float) -> None:
        """Refuse new work and give in-flight requests up to `timeout_s` to finish."""
        self.pool.begin_shutdown()
        if not await self.pool.wait_for_no_leases(timeout_s):
            log.warning(
                "%d requests still running after %.0fs; stopping anyway",
                self.pool.in_flight(),
                timeout_s,
            )

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._preloading is not None:
            self._preloading.cancel()
        if self.reloader is not None:
            await self.reloader.stop()
        for task in list(self._tasks):
            task.cancel()
        await self.pool.shutdown(0.0)
        await self.clients.close()
        self.gpu.close()
        self.activity.close()

    def guarded(self, handler: Handler, *, public: bool = False) -> Handler:
        """Wrap a handler: check the API key, its scope and its limits (unless `public` or no
        keys are configured) and turn a SwapgateError into its error response
        (Anthropic-shaped on /v1/messages*, OpenAI-shaped elsewhere)."""

        async def run(request: Request) -> Response:
            snapshot = self.snapshot  # the request is decided against this one from here on
            pin(request, snapshot)
            try:
                if public or not snapshot.keyring:
                    return await handler(request)
                return await _with_key(snapshot.keyring, handler, request)
            except SwapgateError as exc:
                return error_response(exc, anthropic=is_anthropic_path(request.scope["path"]))

        return run

    def may_use(self, request: Request, name: str) -> bool:
        """False when the request's key may not use the model name `name`."""
        grant = self.snapshot_of(request).keyring.grant_of(request)
        return grant is None or grant.models is None or grant.models.allows(name)

    def model_not_found(self, name: str, request: Request | None = None) -> ModelNotFound:
        """404 model_not_found for `name`, listing the models the request's key may use (all
        of them without keys): a model a key may not use looks unconfigured to it."""
        snapshot = self.snapshot if request is None else self.snapshot_of(request)
        grant = None if request is None else snapshot.keyring.grant_of(request)
        models = (
            snapshot.config.models
            if grant is None or grant.models is None
            else grant.models.model_ids
        )
        known = ", ".join(sorted(models)) or "(none configured)"
        return ModelNotFound(
            f"model {name!r} is not configured; known models: {known} (GET /v1/models lists them)"
        )

    def require_upstream_model(self, request: Request, tail: str) -> None:
        """For /upstream/{model}/...: 404 unless the key may use the model `tail` names (the
        shortest prefix of its segments that names one, as the handler finds it)."""
        snapshot = self.snapshot_of(request)
        grant = snapshot.keyring.grant_of(request)
        if grant is None or grant.models is None or not tail:
            return
        parts = tail.split("/")
        for i in range(1, len(parts) + 1):
            name = "/".join(parts[:i])
            if snapshot.config.resolve(name) is not None:
                if grant.models.allows(name):
                    return
                break
        raise self.model_not_found(parts[0], request)


def _activity_log(config: Config) -> ActivityLog:
    """The activity log, with its SQLite store when `store.path` is set."""
    path = config.activity.store_path
    return ActivityLog(config.activity.in_memory, ActivityStore(path) if path else None)


async def _with_key(keyring: Keyring, handler: Handler, request: Request) -> Response:
    """Run `handler` for a request whose key has the endpoint's scope, within its limits."""
    scope = required_scope(request.scope["path"])
    grant = keyring.admit(request, scope)
    limits = grant.limits if scope is KeyScope.INFERENCE else None
    if limits is None:
        return await handler(request)
    limits.admit()  # raises 429; no await between it and the try below
    try:
        response = await handler(request)
    except BaseException:
        limits.release()
        raise
    return _release_when_sent(response, limits.release)


def _release_when_sent(response: Response, release: Callable[[], None]) -> Response:
    """Call `release` once the response is over: now for a body already in memory, else
    when its stream ends, fails or is closed because the client left."""
    content = response.content
    if not isinstance(content, StreamedContent):
        release()
        return response
    produce = content.generator

    async def provide() -> AsyncIterator[bytes]:
        try:
            async for chunk in produce():
                yield chunk
        finally:  # also when the client left mid-stream: the slot must never stay taken
            release()

    response.content = StreamedContent(content.type, provide, content.length)
    return response
