"""In-memory log rings per source (the proxy itself and each model) with live subscribers.

Feeds GET /logs and /logs/stream. Stdlib only; never blocks a writer: a subscriber that falls
behind loses its oldest lines, not the writer's time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable

PROXY_SOURCE = "proxy"
_RING_LINES = 2000
_SUBSCRIBER_QUEUE = 1000


class LogHub:
    """Keeps the last lines of every source and fans new lines out to subscribers."""

    def __init__(self, ring_lines: int = _RING_LINES) -> None:
        self._ring_lines = ring_lines
        self._rings: dict[str, deque[str]] = {}
        self._all: deque[tuple[str, str]] = deque(maxlen=ring_lines)
        self._subscribers: set[tuple[str | None, asyncio.Queue[str]]] = set()

    def write(self, source: str, line: str) -> None:
        """Record one line (without its newline) from `source`."""
        ring = self._rings.get(source)
        if ring is None:
            ring = self._rings[source] = deque(maxlen=self._ring_lines)
        ring.append(line)
        self._all.append((source, line))
        for wanted, queue in self._subscribers:
            if wanted is None or wanted == source:
                _put_dropping_oldest(queue, _format(source, line, wanted))

    def tail(self, source: str | None = None, lines: int | None = None) -> list[str]:
        """The last lines of one source (bare) or of all sources (prefixed with the source)."""
        if source is None:
            selected: Iterable[str] = (f"[{s}] {line}" for s, line in self._all)
        else:
            selected = self._rings.get(source, ())
        out = list(selected)
        return out if lines is None else out[-lines:]

    @contextlib.asynccontextmanager
    async def subscribe(self, source: str | None = None) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of new lines (newline-terminated) from one source or all, while open."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=_SUBSCRIBER_QUEUE)
        entry = (source, queue)
        self._subscribers.add(entry)
        try:
            yield queue
        finally:
            self._subscribers.discard(entry)


def _format(source: str, line: str, wanted: str | None) -> str:
    return f"{line}\n" if wanted is not None else f"[{source}] {line}\n"


def _put_dropping_oldest(queue: asyncio.Queue[str], item: str) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
