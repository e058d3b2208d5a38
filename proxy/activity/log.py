"""ActivityLog: the newest records in memory, and all of them in the store when one is set.

Subscribed to the event bus: a RequestFinished appends to a bounded ring (llama-swap's
`metricsMaxInMemory`, 1000 by default) and, with `store.path`, queues the record for the
SQLite writer. Pages are answered from the store when there is one (it survives restarts),
else from the ring.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque

from swapgate.proxy.activity.query import ActivityQuery
from swapgate.proxy.activity.record import RequestRecord
from swapgate.proxy.activity.store import ActivityStore
from swapgate.proxy.events import Event, RequestFinished

DEFAULT_IN_MEMORY = 1000
# The summary of a page covers at most this many of the newest matching records.
SUMMARY_SCAN = 10_000


class ActivityLog:
    """Request records: a ring of `capacity`, plus `store` when `store.path` is set."""

    def __init__(self, capacity: int = DEFAULT_IN_MEMORY, store: ActivityStore | None = None):
        self.store = store
        self._ring: deque[RequestRecord] = deque(maxlen=max(capacity, 0))
        if store is not None:
            self._ring.extend(store.recent(capacity))

    @property
    def capacity(self) -> int:
        return self._ring.maxlen or 0

    def next_id(self) -> int:
        """The id the next record should get (after the store's newest row)."""
        newest = self._ring[-1].id if self._ring else 0
        return max(newest, self.store.last_id() if self.store is not None else 0) + 1

    def on_event(self, event: Event) -> None:
        if isinstance(event, RequestFinished):
            self._ring.append(event.record)
            if self.store is not None:
                self.store.add(event.record)

    def resize(self, capacity: int) -> None:
        """A reload changed metricsMaxInMemory: keep the newest records that still fit."""
        if capacity != self._ring.maxlen:
            self._ring = deque(self._ring, maxlen=max(capacity, 0))

    async def page(self, query: ActivityQuery) -> tuple[list[RequestRecord], list[RequestRecord]]:
        """(the page, newest first; the newest matches the summary covers, whatever page)."""
        overall = dataclasses.replace(query, before=None, limit=SUMMARY_SCAN)
        store = self.store
        if store is not None:
            return await asyncio.to_thread(lambda: (store.select(query), store.select(overall)))
        matches = [record for record in reversed(self._ring) if overall.matches(record)]
        page = [r for r in matches if query.before is None or r.id < query.before]
        return page[: query.limit], matches

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
