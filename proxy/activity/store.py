"""ActivityStore: the activity log in SQLite (`store.path`), written off the request path.

One writer thread owns the writing connection and inserts records in batches as they come;
the event loop only puts records on a queue. Reads (a page of `/api/activity`) run in a
worker thread on their own connection, after a flush barrier, so a page always holds every
request that finished before it was asked for. WAL mode keeps readers and the writer apart.
Rows are kept until the file is deleted; the schema is made on first use.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from swapgate.proxy.activity.query import ActivityQuery
from swapgate.proxy.activity.record import RequestRecord

log = logging.getLogger("swapgate.activity")

FIELDS = tuple(f.name for f in dataclasses.fields(RequestRecord))
_TYPES = {"int": "INTEGER", "float": "REAL", "str": "TEXT", "bool": "INTEGER"}
_BATCH = 500  # rows per transaction at most
_FLUSH_WAIT_S = 5.0
_STOP_WAIT_S = 5.0


def _column(field: dataclasses.Field[object]) -> str:
    kind = str(field.type).split("|")[0].strip()
    sql = _TYPES.get(kind, "TEXT")
    if field.name == "id":
        return "id INTEGER PRIMARY KEY"
    return f"{field.name} {sql}"


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS activity ("
    + ", ".join(_column(f) for f in dataclasses.fields(RequestRecord))
    + ")"
)
_INDEX = "CREATE INDEX IF NOT EXISTS activity_time ON activity (time)"
_INSERT = (
    f"INSERT OR REPLACE INTO activity ({', '.join(FIELDS)}) "  # noqa: S608 (names are ours)
    f"VALUES ({', '.join('?' * len(FIELDS))})"
)


class _Flush:
    """A barrier: set once every record queued before it is committed."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class ActivityStore:
    """Records in one SQLite file; `add` never blocks the caller on disk."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.execute(_INDEX)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="activity-store", daemon=True)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)

    def last_id(self) -> int:
        with self._reader() as db:
            row = db.execute("SELECT MAX(id) FROM activity").fetchone()
        return int(row[0] or 0)

    def recent(self, count: int) -> list[RequestRecord]:
        """The newest `count` records, oldest first (to fill the in-memory ring at start)."""
        with self._reader() as db:
            rows = db.execute(
                f"SELECT {', '.join(FIELDS)} FROM activity ORDER BY id DESC LIMIT ?",  # noqa: S608
                (count,),
            ).fetchall()
        return [_record(row) for row in reversed(rows)]

    def add(self, record: RequestRecord) -> None:
        self._queue.put(record)

    def select(self, query: ActivityQuery) -> list[RequestRecord]:
        """The newest `query.limit` matches. Blocks: call it in a worker thread."""
        self.flush()
        where, args = _where(query)
        sql = f"SELECT {', '.join(FIELDS)} FROM activity {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        with self._reader() as db:
            rows = db.execute(sql, (*args, query.limit)).fetchall()
        return [_record(row) for row in rows]

    def flush(self) -> None:
        """Wait until everything added so far is committed (bounded)."""
        if not self._writer.is_alive():
            return
        barrier = _Flush()
        self._queue.put(barrier)
        if not barrier.done.wait(_FLUSH_WAIT_S):
            log.warning("activity store: writes are more than %.0fs behind", _FLUSH_WAIT_S)

    def close(self) -> None:
        """Write what is queued and stop the writer (bounded)."""
        if self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join(_STOP_WAIT_S)

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection of its own, closed at the end of the block."""
        db = self._connect()
        try:
            db.execute("PRAGMA query_only=ON")
            yield db
        finally:
            db.close()

    def _write_loop(self) -> None:
        db = self._connect()
        try:
            while True:
                item = self._queue.get()
                batch: list[RequestRecord] = []
                barriers: list[_Flush] = []
                stop = False
                while True:
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, _Flush):
                        barriers.append(item)
                    elif isinstance(item, RequestRecord):
                        batch.append(item)
                    if stop or len(batch) >= _BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                self._commit(db, batch)
                for barrier in barriers:
                    barrier.done.set()
                if stop:
                    return
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection, batch: list[RequestRecord]) -> None:
        if not batch:
            return
        try:
            with db:
                db.executemany(_INSERT, [dataclasses.astuple(r) for r in batch])
        except sqlite3.Error as exc:  # a full disk must not stop serving: say so, go on
            log.error("activity store %s: %d records not written: %s", self.path, len(batch), exc)


def _where(query: ActivityQuery) -> tuple[str, tuple[object, ...]]:
    clauses: list[str] = []
    args: list[object] = []
    if query.model is not None:
        clauses.append("(model = ? OR backend = ?)")
        args += [query.model, query.model]
    for column, value in (("route", query.route), ("arm", query.arm)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if query.status_low is not None and query.status_high is not None:
        clauses.append("status >= ? AND status < ?")
        args += [query.status_low, query.status_high]
    if query.since is not None:
        clauses.append("time >= ?")
        args.append(query.since)
    if query.until is not None:
        clauses.append("time <= ?")
        args.append(query.until)
    if query.before is not None:
        clauses.append("id < ?")
        args.append(query.before)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def _record(row: tuple[object, ...]) -> RequestRecord:
    values = dict(zip(FIELDS, row, strict=True))
    values["stream"] = bool(values["stream"])
    values["complete"] = bool(values["complete"])
    return RequestRecord(**values)  # type: ignore[arg-type]
