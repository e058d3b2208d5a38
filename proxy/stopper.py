"""Signals to a bounded stop: drain, stop the model servers, stop Granian, exit.

The serving loop installs one Stopper; see its docstring for what each signal does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Protocol

from swapgate.proxy.web.gateway import Gateway

log = logging.getLogger("swapgate")

# How long Granian may take to close its connections once the model servers are stopped (a
# client holding /logs/stream or /api/events open keeps it waiting): then swapgate exits.
GRANIAN_STOP_S = 3.0


class Stoppable(Protocol):
    """The server being stopped (Granian's embedded server)."""

    def stop(self) -> None: ...


class Stopper:
    """Turns signals into a bounded stop.

    First SIGINT/SIGTERM: refuse new work, let in-flight requests run for up to
    shutdownTimeout, then stop every model server (which ends the streams still running:
    their upstream connections drop and each SSE stream gets an error event), then stop
    Granian. If Granian has not returned GRANIAN_STOP_S later, exit 0 without it (the model
    servers are already stopped). A second SIGINT/SIGTERM: SIGKILL every model server and
    exit at once with 128 + the signal number. SIGHUP: reload the config.
    """

    def __init__(self, gateway: Gateway, server: Stoppable, shutdown_timeout_s: float) -> None:
        self._gateway = gateway
        self._server = server
        self._timeout_s = shutdown_timeout_s
        self._task: asyncio.Task[None] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle SIGINT, SIGTERM and SIGHUP on `loop` from now on."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._gateway.request_reload, "SIGHUP")

    def on_signal(self, sig: signal.Signals) -> None:
        """The first SIGINT/SIGTERM starts the stop; a second one exits now."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._stop())
            return
        log.warning("second %s: killing every model server and exiting now", sig.name)
        self._exit_now(128 + sig.value)

    async def _stop(self) -> None:
        pool = self._gateway.pool
        log.info("stopping: draining in-flight requests (up to %gs)", self._timeout_s)
        await self._gateway.drain(self._timeout_s)
        if pool.in_flight():
            log.warning("ending %d requests: stopping the model servers they use", pool.in_flight())
        # Stopping the servers now, before Granian, is what bounds the stop: Granian's own
        # close waits for every response to end, however long a stream would still run.
        await pool.shutdown(0.0)
        self._server.stop()
        await asyncio.sleep(GRANIAN_STOP_S)  # cancelled when serve() returns first
        log.warning("connections still open %gs after the models stopped; exiting", GRANIAN_STOP_S)
        self._exit_now(0)

    def _exit_now(self, code: int) -> None:
        self._gateway.pool.kill_all_now()  # os._exit: unwinding would wait for Granian
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)
