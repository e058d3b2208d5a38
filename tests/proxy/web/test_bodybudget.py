"""The request-body budget: reservations fit the limit and every release gives all back."""

from __future__ import annotations

from swapgate.proxy.web.bodybudget import BodyBudget


def test_reservations_fit_the_limit() -> None:
    """Holds take bytes while they fit; one that does not fit takes nothing."""
    budget = BodyBudget(100)
    first, second = budget.hold(), budget.hold()
    assert first.reserve_up_to(60)
    assert not second.reserve_up_to(41)
    assert (budget.held, second.size) == (60, 0)
    assert second.reserve_up_to(40)
    assert budget.held == 100


def test_growing_a_hold_takes_only_the_difference() -> None:
    """A declared size reserved up front costs nothing more as its chunks arrive."""
    budget = BodyBudget(100)
    hold = budget.hold()
    assert hold.reserve_up_to(80)
    for received in (10, 40, 80):
        assert hold.reserve_up_to(received)
    assert budget.held == 80
    assert hold.reserve_up_to(90)
    assert (budget.held, hold.size) == (90, 90)


def test_release_gives_everything_back_once() -> None:
    """release returns the whole hold; a second release changes nothing."""
    budget = BodyBudget(100)
    hold, other = budget.hold(), budget.hold()
    assert hold.reserve_up_to(70)
    assert other.reserve_up_to(30)
    hold.release()
    hold.release()
    assert budget.held == 30
    other.release()
    assert budget.held == 0


def test_a_body_as_large_as_the_limit_fits_an_empty_budget() -> None:
    """The limit itself is allowed: a request at maxBufferedRequestBytes is never refused alone."""
    budget = BodyBudget(100)
    hold = budget.hold()
    assert hold.reserve_up_to(100)
    assert not budget.hold().reserve_up_to(1)
