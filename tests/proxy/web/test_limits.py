"""limits.py: the per-key token bucket and in-flight count, on a hand-moved clock."""

from __future__ import annotations

import pytest

from swapgate.proxy.errors import ConcurrencyLimited, RateLimited
from swapgate.proxy.web.limits import KeyLimits, TokenBucket


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_minutes_worth_then_refills_steadily() -> None:
    """Capacity is the per-minute figure; then one token every 60/n seconds, never above it."""
    clock = Clock()
    bucket = TokenBucket(6, clock)
    assert [bucket.take() for _ in range(6)] == [0.0] * 6
    assert bucket.take() == pytest.approx(10.0)
    clock.now += 4
    assert bucket.take() == pytest.approx(6.0)  # a refusal takes nothing
    clock.now += 6
    assert bucket.take() == 0.0
    clock.now += 3600  # a long quiet spell refills to capacity, not beyond
    assert [bucket.take() for _ in range(6)] == [0.0] * 6
    assert bucket.take() == pytest.approx(10.0)


def test_rate_limit_refusal_says_when_to_retry_and_takes_nothing() -> None:
    """The third request within the minute at 2/min is 429 with Retry-After rounded up; a
    refused request does not use up a token or a slot."""
    clock = Clock()
    limits = KeyLimits("alice", max_concurrent=0, per_minute=2, clock=clock)
    limits.admit()
    limits.release()
    limits.admit()
    limits.release()
    clock.now += 0.5
    with pytest.raises(RateLimited) as caught:
        limits.admit()
    assert caught.value.retry_after_s == 30.0  # 29.5 s rounded up
    assert "alice" in caught.value.message
    assert limits.in_flight == 0
    clock.now += 29.5
    limits.admit()
    assert limits.in_flight == 1


def test_concurrency_limit_counts_in_flight_requests() -> None:
    """Beyond maxConcurrent in flight: ConcurrencyLimited (Retry-After 1); a release frees a
    slot."""
    limits = KeyLimits("bob", max_concurrent=2, per_minute=0, clock=Clock())
    limits.admit()
    limits.admit()
    with pytest.raises(ConcurrencyLimited) as caught:
        limits.admit()
    assert (caught.value.code, caught.value.retry_after_s) == ("key_concurrency_limit", 1.0)
    limits.release()
    limits.admit()
    assert limits.in_flight == 2


def test_a_request_refused_for_concurrency_keeps_its_token() -> None:
    """With both limits, a request refused for concurrency does not spend a token."""
    clock = Clock()
    limits = KeyLimits("carol", max_concurrent=1, per_minute=2, clock=clock)
    limits.admit()
    with pytest.raises(ConcurrencyLimited):
        limits.admit()
    limits.release()
    limits.admit()  # the second token is still there
    limits.release()
    with pytest.raises(RateLimited):
        limits.admit()
