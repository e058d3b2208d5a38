"""BackendEnv: what a backend borrows from the pool that owns it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from swapgate.proxy.events import StateChanged


@dataclass(frozen=True, slots=True)
class BackendEnv:
    """What a backend borrows from its owner: clock, ports, output and event sinks."""

    health_session: aiohttp.ClientSession
    allocate_port: Callable[[str, int], int]  # (model, preferred port) -> a free port
    release_port: Callable[[str], None]
    on_output: Callable[[str, str], None]  # (model id, line)
    on_event: Callable[[StateChanged], None]
    on_idle: Callable[[str], None]  # the last lease of a model was released
    health_timeout_s: float
    clock: Callable[[], float] = time.monotonic
