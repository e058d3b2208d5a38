"""In-memory log rings per source (the proxy itself and each model) with live subscribers.

Feeds GET /logs and /logs/stream. Every ring is bounded in lines and in bytes (UTF-8): by
default 2000 lines and 1 MiB per source, 2000 lines and 4 MiB for all sources together, so a
chatty model costs at most that much memory. Stdlib only; never blocks a writer: a subscriber
that falls behind loses its oldest lines, not the writer's time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Generic, TypeVar

PROXY_SOURCE = "proxy"
_RING_LINES = 2000
_SOURCE_BYTES = 1024 * 1024
_ALL_BYTES = 4 * 1024 * 1024
_SUBSCRIBER_QUEUE = 1000

T = TypeVar("T")


class _Ring(Generic[T]):
    """The newest entries within a line and a byte budget; the newest one is always kept."""

    __slots__ = ("_entries", "_max_bytes", "_max_lines", "_size")

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self._entries: deque[tuple[int, T]] = deque()
        self._size = 0
        self._max_lines = max_lines
        self._max_bytes = max_bytes

    def append(self, entry: T, size: int) -> None:
        self._entries.append((size, entry))
        self._size += size
        while len(self._entries) > 1 and (
            len(self._entries) > self._max_lines or self._size > self._max_bytes
        ):
            self._size -= self._entries.popleft()[0]

    def __iter__(self) -> Iterator[T]:
        return (entry for _, entry in self._entries)


class LogHub:
    """Keeps the last lines of every source and fans new lines out to subscribers."""

    def __init__(
        self,
        ring_lines: int = _RING_LINES,
        source_bytes: int = _SOURCE_BYTES,
        all_bytes: int = _ALL_BYTES,
    ) -> None:
        self._ring_lines = ring_lines
        self._source_bytes = source_bytes
        self._rings: dict[str, _Ring[str]] = {}
        self._all: _Ring[tuple[str, str]] = _Ring(ring_lines, all_bytes)
        self._subscribers: set[tuple[str | None, asyncio.Queue[str]]] = set()

    def write(self, source: str, line: str) -> None:
        """Record one line (without its newline) from `source`."""
        ring = self._rings.get(source)
        if ring is None:
            ring = self._rings[source] = _Ring(self._ring_lines, self._source_bytes)
        size = len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
        ring.append(line, size)
        self._all.append((source, line), size)
        for wanted, queue in self._subscribers:
            if wanted is None or wanted == source:
                _put_dropping_oldest(queue, _format(source, line, wanted))

    def tail(self, source: str | None = None, lines: int | None = None) -> list[str]:
        """The last lines of one source (bare) or of all sources (prefixed with the source)."""
        if source is None:
            selected: Iterator[str] = (f"[{s}] {line}" for s, line in self._all)
        else:
            selected = iter(self._rings.get(source, ()))
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
