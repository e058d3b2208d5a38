"""Tests for router.weighted: the cumulative picker and the stable sticky hash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swapgate import router
from swapgate.router import Picker, sticky_point

# Pinned outputs of the sticky hash. They must never change: a change moves every client of
# every running A/B test to another variant. A hash() regression (salted per process) fails.
STICKY_VECTORS = [
    # key, point in range(100), arm for [70, 30], arm for [1, 0, 1], point in range(2**61 - 1)
    ("alice", 29, 0, 2, 1002873406788786827),
    ("bob", 42, 0, 0, 1509597766893347989),
    ("carol", 5, 0, 2, 674786433318088550),
    ("dave", 55, 0, 2, 419595140493302655),
    ("user-42", 98, 1, 0, 1126122340982648745),
    ("42", 38, 0, 0, 1708057160814323836),
    ("Ünïcode", 44, 0, 0, 382405944341471789),
]

weight_lists = st.lists(st.integers(0, 20), min_size=1, max_size=8).filter(any)


def test_pick_bisects_cumulative_weights() -> None:
    """Points map to variants by cumulative boundaries: [0, 70) -> 0, [70, 100) -> 1."""
    picker = Picker([70, 30])
    assert picker.total == 100
    assert [picker.pick(p) for p in (0, 69, 70, 99)] == [0, 0, 1, 1]


def test_zero_weights_rejected() -> None:
    """A picker with no positive weight cannot exist."""
    with pytest.raises(ValueError, match="at least one > 0"):
        Picker([0, 0])


def test_pick_random_covers_bounds() -> None:
    """random() at 0.0 picks the first variant; 1.0 from a bad source stays in range."""
    picker = Picker([1, 2, 3])
    assert picker.pick_random(lambda: 0.0) == 0
    assert picker.pick_random(lambda: 0.9999) == 2
    assert picker.pick_random(lambda: 1.0) == 2


@given(weight_lists)
def test_full_sweep_gives_each_variant_exactly_its_weight(weights: list[int]) -> None:
    """Stepping through range(total) selects variant i exactly weights[i] times."""
    picker = Picker(weights)
    counts = [0] * len(weights)
    for point in range(picker.total):
        counts[picker.pick(point)] += 1
    assert counts == weights


@given(weight_lists, st.text(max_size=20))
def test_sticky_pick_is_deterministic_and_never_zero_weight(weights: list[int], key: str) -> None:
    """The same key always gets the same variant, and never one with weight 0."""
    picker = Picker(weights)
    first = picker.pick_sticky(key)
    assert first == Picker(list(weights)).pick_sticky(key)
    assert weights[first] > 0


@pytest.mark.parametrize(("key", "point", "arm_70_30", "arm_1_0_1", "big"), STICKY_VECTORS)
def test_sticky_vectors_are_pinned(
    key: str, point: int, arm_70_30: int, arm_1_0_1: int, big: int
) -> None:
    """Sticky points and variants match values pinned when the hash was chosen."""
    assert sticky_point(key, 100) == point
    assert Picker([70, 30]).pick_sticky(key) == arm_70_30
    assert Picker([1, 0, 1]).pick_sticky(key) == arm_1_0_1
    assert sticky_point(key, 2**61 - 1) == big


def test_sticky_point_same_in_another_process() -> None:
    """A fresh interpreter with a different hash seed computes the same points."""
    code = "from router import sticky_point; print([sticky_point(k, 1000) for k in ('a', 'bob')])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=Path(router.__file__).parent.parent,  # so that `import router` finds this checkout
    )
    assert out.stdout.strip() == str([sticky_point(k, 1000) for k in ("a", "bob")])
