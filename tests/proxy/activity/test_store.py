"""swapgate.proxy.activity.store and .log: SQLite survives a restart; the ring is bounded."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from swapgate.proxy.activity.log import ActivityLog
from swapgate.proxy.activity.query import ActivityQuery
from swapgate.proxy.activity.store import ActivityStore
from swapgate.proxy.events import RequestFinished
from tests.proxy.activity.records import record


def finished(log: ActivityLog, *ids: int, **fields: object) -> None:
    for id_ in ids:
        log.on_event(RequestFinished(record(id_, **fields), 0.0))


def page(log: ActivityLog, query: ActivityQuery) -> list[int]:
    records, _ = asyncio.run(log.page(query))
    return [r.id for r in records]


def test_the_ring_keeps_the_newest_records() -> None:
    log = ActivityLog(capacity=3)
    finished(log, 1, 2, 3, 4, 5)
    assert page(log, ActivityQuery()) == [5, 4, 3]
    assert log.next_id() == 6


def test_a_page_and_the_summary_of_every_match() -> None:
    log = ActivityLog(capacity=100)
    finished(log, *range(1, 11))
    records, matches = asyncio.run(log.page(ActivityQuery(limit=3, before=5)))
    assert [r.id for r in records] == [4, 3, 2]
    assert len(matches) == 10  # the summary does not depend on the page


def test_resize_keeps_the_newest() -> None:
    log = ActivityLog(capacity=10)
    finished(log, *range(1, 11))
    log.resize(2)
    assert page(log, ActivityQuery()) == [10, 9]


def test_records_survive_a_restart_and_numbering_continues(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "activity.sqlite")
    first = ActivityLog(capacity=2, store=ActivityStore(path))
    finished(first, 1, 2, 3, status=200)
    finished(first, 4, status=502, generated_tokens=None)
    first.close()

    second = ActivityLog(capacity=2, store=ActivityStore(path))
    try:
        assert second.next_id() == 5
        assert page(second, ActivityQuery()) == [4, 3, 2, 1]  # the store, not the ring of 2
        assert page(second, ActivityQuery(status_low=500, status_high=600)) == [4]
        records, _ = asyncio.run(second.page(ActivityQuery(limit=1)))
        assert records[0] == record(4, status=502)  # every field round-trips
    finally:
        second.close()


def test_a_page_holds_everything_added_before_it(tmp_path: Path) -> None:
    log = ActivityLog(capacity=1, store=ActivityStore(str(tmp_path / "a.sqlite")))
    try:
        finished(log, *range(1, 2001))
        assert len(page(log, ActivityQuery(limit=1000))) == 1000
        _, matches = asyncio.run(log.page(ActivityQuery()))
        assert len(matches) == 2000
    finally:
        log.close()


def test_a_write_error_is_logged_and_serving_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a.sqlite"
    store = ActivityStore(str(path))
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE activity")
    store.add(record(1))
    store.flush()
    store.add(record(2))
    store.close()
    assert "records not written" in caplog.text
