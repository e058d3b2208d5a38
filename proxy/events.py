"""Typed records of what the lifecycle did, and the bus that hands them to subscribers.

Every state change, queue change, swap, memory figure, config reload and finished request is
published here once; logging, `GET /api/events`, loading progress, the activity log, the
metrics and the dashboard subscribe instead of polling. Stdlib only (plus the state enum); publishing never awaits and never raises into the
publisher.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from swapgate.proxy.activity.record import RequestRecord
from swapgate.proxy.lifecycle.state import BackendState

log = logging.getLogger("swapgate.events")


class Cause(enum.StrEnum):
    """Why a backend changed state; the values are what logs and /api/events show."""

    REQUESTED = "requested"  # a request (or the load API, or preload) needs it
    HEALTHY = "healthy"
    START_FAILED = "start failed"
    EXITED = "exited"  # the process ended on its own
    UNREACHABLE = "unreachable"  # an external model's server stopped answering
    SWAP = "swap"  # stopped to make room for another model
    FAIRNESS = "fairness"  # stopped because a queued request waited maxWaitSeconds
    UNLOAD = "unload"
    TTL = "ttl"
    SHUTDOWN = "shutdown"
    RELOAD = "reload"  # the config was reloaded and changed or removed this model
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class StateChanged:
    """A backend moved from `old` to `new` at monotonic time `at`."""

    model: str
    old: BackendState
    new: BackendState
    cause: Cause
    at: float
    detail: str = ""
    kind: str = field(default="state", init=False)


@dataclass(frozen=True, slots=True)
class QueueChanged:
    """How many requests wait for each model (models with none are left out)."""

    queued: tuple[tuple[str, int], ...]
    at: float
    kind: str = field(default="queue", init=False)


@dataclass(frozen=True, slots=True)
class SwapStarted:
    """A swap was committed: `evict` stop (draining first), then `target` starts."""

    target: str
    evict: tuple[str, ...]
    at: float
    kind: str = field(default="swap_started", init=False)


@dataclass(frozen=True, slots=True)
class SwapFinished:
    """A swap ended; `error` is empty when the target became ready."""

    target: str
    evict: tuple[str, ...]
    duration_s: float
    at: float
    error: str = ""
    kind: str = field(default="swap_finished", init=False)


@dataclass(frozen=True, slots=True)
class MemoryFigure:
    """A model's GPU memory figure in MiB and where it came from."""

    model: str
    mib: int
    source: str  # configured | estimated | measured | unknown
    at: float
    detail: str = ""
    kind: str = field(default="memory", init=False)


@dataclass(frozen=True, slots=True)
class ConfigReloaded:
    """A reload ended: `outcome` is applied, unchanged or failed; `problems` are the issues
    in `--check` format (errors first when it failed), the id tuples what it did."""

    outcome: str
    trigger: str  # api | SIGHUP | watch
    at: float
    problems: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kind: str = field(default="config_reloaded", init=False)


@dataclass(frozen=True, slots=True)
class RequestFinished:
    """An inference request ended (the activity log, metrics and the dashboard record it)."""

    record: RequestRecord
    at: float
    kind: str = field(default="request", init=False)


Event = (
    StateChanged
    | QueueChanged
    | SwapStarted
    | SwapFinished
    | MemoryFigure
    | ConfigReloaded
    | RequestFinished
)
_QUEUE_BOUND = 1024  # a subscriber that falls this far behind loses its oldest events


class EventBus:
    """Fan-out of events: synchronous callbacks, and bounded queues for async readers."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Event], None]] = []
        self._queues: set[asyncio.Queue[Event]] = set()

    def on(self, callback: Callable[[Event], None]) -> None:
        """Call `callback` for every event, in the publisher's stack (it must not block)."""
        self._callbacks.append(callback)

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event]]:
        """A queue that receives every event published while the block runs."""
        queue: asyncio.Queue[Event] = asyncio.Queue(_QUEUE_BOUND)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def publish(self, event: Event) -> None:
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:  # a broken subscriber must not break a state change
                log.exception("event subscriber failed on %s", event.kind)
        for queue in self._queues:
            if queue.full():  # a slow reader loses its oldest event, never blocks the owner
                queue.get_nowait()
            queue.put_nowait(event)
