"""BackendPool: the single owner of every backend. Serialises swaps, unloads idle backends
(TTL), and stops everything on shutdown. Nothing else starts or stops upstream servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Callable, Mapping

import aiohttp

from proxy.config.model import Config
from proxy.errors import ModelNotFound, ShuttingDown
from proxy.events import StateChanged
from proxy.lifecycle.backend import Backend, BackendEnv, Lease
from proxy.lifecycle.eviction import evictions_for, groups_from_config
from proxy.lifecycle.state import BackendState

log = logging.getLogger("swapgate.pool")

_S = BackendState
_REAPER_INTERVAL_S = 0.25
_MAX_PORT = 65535


class BackendPool:
    """Owns the backends of one config; every start and stop goes through here."""

    def __init__(
        self,
        config: Config,
        on_output: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._on_output = on_output
        self._clock = clock
        # One lock for swap decisions: who runs, who is evicted. Leases never take it.
        self._swap_lock = asyncio.Lock()
        self._ports_in_use: set[int] = set()
        self._shutting_down = False
        self._health_session: aiohttp.ClientSession | None = None
        self._reaper: asyncio.Task[None] | None = None
        self.backends: dict[str, Backend] = {}
        self._groups = groups_from_config(config.raw_sections.get("groups"))

    async def start(self) -> None:
        """Create the backends (all stopped) and the TTL reaper. Call inside the event loop."""
        self._health_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True)  # probes must not pin threads
        )
        env = BackendEnv(
            health_session=self._health_session,
            allocate_port=self._allocate_port,
            release_port=self._ports_in_use.discard,
            on_output=self._on_output,
            on_event=self._on_event,
            health_timeout_s=self._config.health_check_timeout_s,
            is_shutting_down=lambda: self._shutting_down,
            clock=self._clock,
        )
        self.backends = {mid: Backend(spec, env) for mid, spec in self._config.models.items()}
        self._reaper = asyncio.create_task(self._reap_idle_forever())

    @property
    def config(self) -> Config:
        return self._config

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def in_flight(self) -> int:
        return sum(backend.in_flight for backend in self.backends.values())

    # ---- the request path ---------------------------------------------------------------

    async def acquire(self, model_id: str) -> Lease:
        """A lease on a READY backend for `model_id`, swapping others out as the policy says.

        Fast path: the backend is READY and not being evicted -> lease with no await at all.
        """
        backend = self._backend(model_id)
        lease = self._try_lease(backend)
        if lease is not None:
            return lease
        arrived = self._clock()
        while True:
            async with self._swap_lock:
                self._raise_if_shutting_down()
                # A start that failed while we queued fails us too, rather than spawning
                # the broken command once per waiting request.
                failure = backend.last_error
                if backend.state is _S.FAILED and failure and backend.failed_at >= arrived:
                    raise failure
                await self._evict_for(model_id)
                await backend.ensure_ready()
                lease = self._try_lease(backend)
            if lease is not None:
                return lease

    def _try_lease(self, backend: Backend) -> Lease | None:
        self._raise_if_shutting_down()
        return backend.try_lease()

    def _raise_if_shutting_down(self) -> None:
        if self._shutting_down:
            msg = "swapgate is shutting down; retry against another instance or after restart"
            raise ShuttingDown(msg)

    def _backend(self, model_id: str) -> Backend:
        backend = self.backends.get(model_id)
        if backend is None:
            known = ", ".join(sorted(self.backends))
            msg = f"model {model_id!r} is not configured; known models: {known}"
            raise ModelNotFound(msg)
        return backend

    async def _evict_for(self, model_id: str) -> None:
        active = [m for m, b in self.backends.items() if b.state is not _S.STOPPED]
        victims = evictions_for(model_id, active, self._groups)
        if victims:
            log.info("swap: stopping %s to run %s", ", ".join(victims), model_id)
        # Mark all first so none takes new leases while we drain the others.
        for victim in victims:
            self.backends[victim].mark_stopping(f"swap to {model_id}")
        for victim in victims:
            await self.backends[victim].ensure_stopped(None, f"swap to {model_id}")

    # ---- unloading ----------------------------------------------------------------------

    async def unload(self, model_id: str | None = None) -> list[str]:
        """Stop one model (or all); returns what was stopped.

        In-flight requests get up to shutdownTimeout seconds to finish: an unload frees the
        GPU soon even while a long generation runs, without cutting short ones.
        """
        targets = [self._backend(model_id)] if model_id else list(self.backends.values())
        stopped = [b.spec.id for b in targets if b.state is not _S.STOPPED]
        drain_s = self._config.shutdown_timeout_s
        async with self._swap_lock:
            await asyncio.gather(*(b.ensure_stopped(drain_s, "unload") for b in targets))
        return stopped

    def _ttl_of(self, backend: Backend) -> float:
        return backend.spec.ttl_s or self._config.global_ttl_s

    async def _reap_idle_forever(self) -> None:
        while True:
            await asyncio.sleep(_REAPER_INTERVAL_S)
            now = self._clock()
            idle = [b for b in self.backends.values() if b.is_idle_for(self._ttl_of(b), now)]
            for backend in idle:
                # Re-checked synchronously under the lock: a request may have leased it
                # while we waited, and then the TTL clock restarted.
                async with self._swap_lock:
                    expired = backend.is_idle_for(self._ttl_of(backend), self._clock())
                    if expired:
                        log.info(
                            "unloading %s: idle for %.0fs", backend.spec.id, self._ttl_of(backend)
                        )
                        expired = backend.mark_stopping("ttl expired")
                if expired:
                    await backend.ensure_stopped(None, "ttl expired")

    # ---- ports ---------------------------------------------------------------------------

    def _allocate_port(self, preferred: int) -> int:
        port = preferred
        while port <= _MAX_PORT:
            if port not in self._ports_in_use and _port_is_free(port):
                self._ports_in_use.add(port)
                return port
            port += 1
        msg = f"no free TCP port at or above {preferred}"
        raise OSError(errno.EADDRINUSE, msg)

    # ---- shutdown -----------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """From now on every acquire() raises ShuttingDown; in-flight leases carry on."""
        self._shutting_down = True

    async def wait_for_no_leases(self, timeout_s: float) -> bool:
        """Wait until no request holds a lease, at most `timeout_s`. True if none does."""
        waits = asyncio.gather(*(b.wait_idle() for b in self.backends.values()))
        try:
            await asyncio.wait_for(waits, timeout_s)
        except TimeoutError:
            return False
        return True

    async def shutdown(self, drain_timeout_s: float) -> None:
        """Refuse new work, give in-flight requests `drain_timeout_s`, stop every child."""
        self.begin_shutdown()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await asyncio.gather(
            *(b.ensure_stopped(drain_timeout_s, "shutdown") for b in self.backends.values())
        )
        if self._health_session is not None:
            await self._health_session.close()

    def kill_all_now(self) -> None:
        """Synchronous last resort (atexit): SIGKILL every child group still alive."""
        for backend in self.backends.values():
            backend.kill_now()

    def _on_event(self, event: StateChanged) -> None:
        log.info("model %s: %s -> %s (%s)", event.model, event.old, event.new, event.reason)

    def running(self) -> Mapping[str, Backend]:
        """Backends that are not STOPPED, for display."""
        return {m: b for m, b in self.backends.items() if b.state is not _S.STOPPED}


def _port_is_free(port: int) -> bool:
    """True if nothing listens on `port` on any local address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True
