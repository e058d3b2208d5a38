"""Gateway: what every handler shares (config, the backend pool, upstream clients, logs)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine

from blacksheep import Request, Response

from swapgate.proxy.config.model import Config
from swapgate.proxy.errors import SwapgateError
from swapgate.proxy.gpu import GpuProbe
from swapgate.proxy.lifecycle.pool import BackendPool
from swapgate.proxy.loghub import LogHub
from swapgate.proxy.routestats import RouteStats
from swapgate.proxy.web.auth import ApiKeys
from swapgate.proxy.web.envelope import error_response, is_anthropic_path
from swapgate.proxy.web.upstream import UpstreamClients
from swapgate.router import compile_rules

log = logging.getLogger("swapgate.web")

INJECT_DELAY_ENV = "SWAPGATE_TEST_INJECT_DELAY_MS"
Handler = Callable[[Request], Awaitable[Response]]


class Gateway:
    """The running gateway's shared parts; created at app start, closed at app stop."""

    def __init__(self, config: Config, hub: LogHub) -> None:
        self.config = config
        self.hub = hub
        self.gpu = GpuProbe()
        self.pool = BackendPool(config, on_output=hub.write, gpu=self.gpu)
        self.clients = UpstreamClients()
        names = {**{model_id: model_id for model_id in config.models}, **config.alias_index}
        self.router = compile_rules(
            config.routes, names, rewrite_default=config.rewrite_response_model
        )
        self.route_stats = RouteStats()
        self.api_keys = ApiKeys(config.api_keys)
        self._preloading: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Header facts are only built when some rule looks at headers.
        self.router_reads_headers = any(rule.match.headers for rule in config.routes) or any(
            rule.sticky is not None for rule in config.routes
        )
        # A test switch for the benchmark gate: proves the gate notices added latency.
        self.inject_delay_s = float(os.environ.get(INJECT_DELAY_ENV, "0") or 0) / 1000
        self._stopped = False

    async def start(self) -> None:
        await self.pool.start()
        if self.config.preload:
            self._preloading = asyncio.create_task(self._preload(self.config.preload))

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
        for task in list(self._tasks):
            task.cancel()
        await self.pool.shutdown(0.0)
        await self.clients.close()
        self.gpu.close()

    def guarded(self, handler: Handler, *, public: bool = False) -> Handler:
        """Wrap a handler: check API keys (unless `public`) and turn a SwapgateError into its
        error response (Anthropic-shaped on /v1/messages*, OpenAI-shaped elsewhere)."""
        keys = None if public or not self.api_keys else self.api_keys

        async def run(request: Request) -> Response:
            try:
                if keys is not None:
                    keys.check(request)
                return await handler(request)
            except SwapgateError as exc:
                return error_response(exc, anthropic=is_anthropic_path(request.scope["path"]))

        return run
