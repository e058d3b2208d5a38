"""swapgate.proxy.activity.query: filters, their parsing and the summary."""

from __future__ import annotations

import pytest

from swapgate.proxy.activity.query import ActivityQuery, parse_query, summarize
from swapgate.proxy.errors import BadRequest
from tests.proxy.activity.records import record


def test_model_matches_the_asked_name_or_the_backend() -> None:
    aliased = record(1, model="gpt-4o-mini", backend="alpha")
    assert ActivityQuery(model="alpha").matches(aliased)
    assert ActivityQuery(model="gpt-4o-mini").matches(aliased)
    assert not ActivityQuery(model="bravo").matches(aliased)


@pytest.mark.parametrize(
    ("status", "codes"),
    [
        ("2xx", {200}),
        ("4xx", {404, 429}),
        ("5xx", {502}),
        ("error", {404, 429, 502}),
        ("429", {429}),
    ],
)
def test_status_codes_and_classes(status: str, codes: set[int]) -> None:
    query = parse_query({"status": status})
    kept = {code for code in (200, 404, 429, 502) if query.matches(record(1, status=code))}
    assert kept == codes


def test_time_route_arm_and_before() -> None:
    query = parse_query({"since": "1800000002", "until": "1800000004", "route": "r", "arm": "b"})
    matching = [record(i, route="r", arm="b") for i in range(1, 7)]
    assert [r.id for r in matching if query.matches(r)] == [2, 3, 4]
    assert not query.matches(record(3, route="r", arm="a"))
    assert [r.id for r in matching if parse_query({"before": "3"}).matches(r)] == [1, 2]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit must be between 1 and 1000"),
        ({"limit": "5000"}, "limit must be between 1 and 1000"),
        ({"limit": "x"}, "limit must be an integer"),
        ({"status": "ok"}, "status must be an integer"),
        ({"since": "yesterday"}, "since must be a unix time"),
        ({"until": "nan"}, "until must be a unix time"),
        ({"before": "1.5"}, "before must be an integer"),
    ],
)
def test_bad_values_are_400s_that_name_them(params: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_query(params)


def test_summary_totals_and_nearest_rank_medians() -> None:
    records = [
        record(1, ttft_s=0.1, duration_s=1.0, prompt_tokens=10, generated_tokens=5),
        record(2, ttft_s=0.3, duration_s=3.0, prompt_tokens=20, cached_tokens=15),
        record(3, ttft_s=None, duration_s=0.01, status=404),
        record(4, ttft_s=0.2, duration_s=2.0, decode_tokens_per_s=40.0),
    ]
    summary = summarize(records)
    assert summary["requests"] == 4
    assert summary["errors"] == 1
    assert (summary["prompt_tokens"], summary["cached_tokens"], summary["generated_tokens"]) == (
        30,
        15,
        5,
    )
    assert summary["ttft_p50_s"] == 0.2
    assert summary["ttft_p95_s"] == 0.3
    assert summary["duration_p50_s"] == 1.0
    assert summary["decode_tokens_per_s"] == 40.0
    assert summary["prefill_tokens_per_s"] is None


def test_summary_of_nothing() -> None:
    assert summarize([])["ttft_p50_s"] is None
