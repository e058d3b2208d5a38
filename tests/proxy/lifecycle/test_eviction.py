"""The eviction policy: one model at a time, pure and deterministic."""

from __future__ import annotations

from swapgate.proxy.lifecycle.eviction import evictions_for


def test_nothing_running_evicts_nothing() -> None:
    """With no active backends the target starts without stopping anyone."""
    assert evictions_for("a", []) == ()


def test_target_alone_evicts_nothing() -> None:
    """The target itself is never evicted to make room for itself."""
    assert evictions_for("a", ["a"]) == ()


def test_every_other_active_model_is_evicted() -> None:
    """Every active backend but the target must stop."""
    assert evictions_for("b", ["a"]) == ("a",)
    assert evictions_for("b", ["a", "b", "c"]) == ("a", "c")


def test_order_is_sorted_regardless_of_input_order() -> None:
    """Victims come back in sorted id order, so swaps log and stop deterministically."""
    assert evictions_for("x", ["zeta", "alpha", "mid"]) == ("alpha", "mid", "zeta")
    assert evictions_for("x", iter(["mid", "zeta", "alpha"])) == ("alpha", "mid", "zeta")


def test_target_not_in_active_list_is_fine() -> None:
    """A target that is not running yet does not affect who else is evicted."""
    assert evictions_for("new", ["old"]) == ("old",)


def test_result_is_a_tuple_and_input_is_not_consumed_twice() -> None:
    """A one-shot iterable is accepted and the answer is an immutable tuple."""
    result = evictions_for("a", (m for m in ["b", "c"]))
    assert isinstance(result, tuple)
    assert result == ("b", "c")
