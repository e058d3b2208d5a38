"""Activity endpoints: `GET /api/activity` (a page of request records with a summary) and
`GET /api/activity.csv` (the same filters, every match, as CSV)."""

from __future__ import annotations

import csv
import dataclasses
import io

from blacksheep import Content, Request, Response

from swapgate.proxy.activity.query import parse_query, summarize
from swapgate.proxy.activity.record import RequestRecord
from swapgate.proxy.activity.store import FIELDS
from swapgate.proxy.web.envelope import json_response
from swapgate.proxy.web.gateway import Gateway

CSV_LIMIT = 100_000  # rows in one export at most (the ring holds far fewer)
_FORMULA_STARTS = frozenset("=+-@\t\r")


def _params(request: Request) -> dict[str, str]:
    return {name: values[0] for name, values in request.query.items() if values}


async def activity(gateway: Gateway, request: Request) -> Response:
    """GET /api/activity: newest first; `next` is the `before` for the following page."""
    query = parse_query(_params(request))
    page, matches = await gateway.activity.page(query)
    more = len(page) == query.limit and len(matches) > 0 and page[-1].id > matches[-1].id
    return json_response(
        {
            "records": [dataclasses.asdict(record) for record in page],
            "next": page[-1].id if more else None,
            "summary": summarize(matches),
            "capacity": gateway.activity.capacity,
            "stored": gateway.activity.store is not None,
        }
    )


async def activity_csv(gateway: Gateway, request: Request) -> Response:
    """GET /api/activity.csv: every matching record (newest first), one row each."""
    query = parse_query(_params(request) | {"limit": str(CSV_LIMIT)}, max_limit=CSV_LIMIT)
    page, _ = await gateway.activity.page(query)
    headers = [(b"content-disposition", b'attachment; filename="swapgate-activity.csv"')]
    return Response(200, headers, Content(b"text/csv; charset=utf-8", to_csv(page).encode()))


def to_csv(records: list[RequestRecord]) -> str:
    """Records as CSV with a header row; empty cells where a figure is unknown."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for record in records:
        writer.writerow(_cell(value) for value in dataclasses.astuple(record))
    return out.getvalue()


def _cell(value: object) -> object:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with a leading '."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value
