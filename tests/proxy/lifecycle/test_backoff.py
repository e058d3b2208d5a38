"""Crash back-off: the delays, the reset rules and the failure record. Pure."""

from __future__ import annotations

import pytest

from swapgate.proxy.lifecycle.backoff import MAX_DELAY_S, STABLE_AFTER_S, Backoff, StartFailure


def fail(backoff: Backoff, at: float, ready_since: float | None = None) -> None:
    backoff.failed(StartFailure("boom", at), ready_since)


def test_delays_double_from_one_second_to_sixty() -> None:
    """Consecutive failures wait 1, 2, 4 … seconds, never more than 60."""
    backoff = Backoff()
    delays = []
    for _ in range(9):
        fail(backoff, 0.0)
        delays.append(backoff.retry_after(0.0))
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, MAX_DELAY_S, MAX_DELAY_S, MAX_DELAY_S]


def test_retry_after_counts_down_and_ends() -> None:
    """retry_after is the time left, then None once the delay has passed."""
    backoff = Backoff()
    fail(backoff, 10.0)
    assert backoff.retry_after(10.25) == pytest.approx(0.75)
    assert backoff.retry_after(11.0) is None


def test_an_early_exit_counts_as_a_failure() -> None:
    """A server that exits soon after becoming ready adds to the count."""
    backoff = Backoff()
    fail(backoff, 5.0)
    fail(backoff, 20.0, ready_since=15.0)
    assert backoff.failures == 2


def test_an_exit_after_a_stable_run_does_not_back_off() -> None:
    """A server that ran for STABLE_AFTER_S before exiting restarts at once."""
    backoff = Backoff()
    fail(backoff, 1.0)
    fail(backoff, 100.0 + STABLE_AFTER_S, ready_since=100.0)
    assert backoff.failures == 0
    assert backoff.retry_after(100.0 + STABLE_AFTER_S) is None
    assert backoff.last is not None  # the reason is still shown


def test_reset_clears_the_delay() -> None:
    """A stop we asked for (or an unload) clears the count and the delay."""
    backoff = Backoff()
    fail(backoff, 0.0)
    backoff.reset()
    assert (backoff.failures, backoff.retry_after(0.0)) == (0, None)
