"""Statistics for the benchmark: percentiles, overhead percentages and round alternation.

Pure functions only, so they are cheap to test; nothing here does I/O or imports `proxy/`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum


class Target(StrEnum):
    """The two sides of every comparison."""

    DIRECT = "direct"
    VIA = "via"


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0..100) with linear interpolation; NaN for no values.

    Interpolating (numpy's default) rather than taking the nearest rank keeps a p99 of a small
    sample from jumping a whole request when one value is added.
    """
    if not values:
        return math.nan
    if not 0 <= pct <= 100:  # the bounds of a percentage
        msg = f"percentile must be within 0..100, got {pct}"
        raise ValueError(msg)
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The 50th percentile; NaN for no values."""
    return percentile(values, 50)


def overhead_pct(direct: float, via: float, *, higher_is_better: bool = False) -> float:
    """How much worse ``via`` is than ``direct``, in percent (positive = worse).

    For a latency, +5 means via took 5 % longer; for a rate (``higher_is_better``), +5 means
    via delivered 5 % less. NaN when either side is missing or ``direct`` is zero.
    """
    if math.isnan(direct) or math.isnan(via) or direct == 0:
        return math.nan
    if higher_is_better:
        return (direct - via) / direct * 100
    return (via - direct) / direct * 100


def round_order(rounds: int) -> list[tuple[int, Target]]:
    """The run order of ``rounds`` paired rounds: (round index, target) pairs.

    Pairs alternate their order (A B, B A, A B, ...) so a linear drift of the machine (a
    warming CPU, a background job) lands on both targets equally instead of always favouring
    whichever runs first.
    """
    order: list[tuple[int, Target]] = []
    for index in range(rounds):
        pair = (Target.DIRECT, Target.VIA) if index % 2 == 0 else (Target.VIA, Target.DIRECT)
        order.extend((index, target) for target in pair)
    return order


def median_of_ratios(pairs: Sequence[tuple[float, float]], *, higher_is_better: bool) -> float:
    """The median over rounds of each round's overhead %; NaN rounds are skipped.

    A per-round ratio compares two measurements taken seconds apart, so slow drift cancels
    within each pair; the median then discards the odd round hit by a noisy neighbour.
    """
    ratios = [overhead_pct(d, v, higher_is_better=higher_is_better) for d, v in pairs]
    return median([r for r in ratios if not math.isnan(r)])
