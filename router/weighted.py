"""Weighted variant choice: a cumulative-weight picker and the stable sticky hash. Stdlib only.

Sticky assignment must survive restarts and run the same in every worker process, so the
key is hashed with blake2b; the built-in `hash()` is salted per process and must never be used.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate

# 8 bytes keep the modulo bias far below anything an A/B test can measure (total << 2**64).
_DIGEST_BYTES = 8


def sticky_point(key: str, total: int) -> int:
    """Map a sticky key to a point in `range(total)`, identically in every process.

    The point depends only on the key (no rule name salt), so renaming or reordering rules
    never moves a client to another variant; changing weights moves only the clients whose
    point crosses a shifted boundary.
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=_DIGEST_BYTES).digest()
    return int.from_bytes(digest, "big") % total


class Picker:
    """Chooses a variant index from integer weights by bisecting the cumulative sums.

    A zero-weight variant adds an empty interval, so no point ever selects it.
    """

    __slots__ = ("_cumulative", "total")

    def __init__(self, weights: Sequence[int]) -> None:
        self._cumulative = tuple(accumulate(weights))
        self.total = self._cumulative[-1] if self._cumulative else 0
        if self.total <= 0:
            msg = "weights must include at least one > 0"
            raise ValueError(msg)

    def pick(self, point: int) -> int:
        """The variant index owning `point`, for `point` in `range(total)`."""
        return bisect_right(self._cumulative, point)

    def pick_random(self, random: Callable[[], float]) -> int:
        """A weighted random variant; `random()` returns a float in [0, 1)."""
        # min() guards an injected source that returns exactly 1.0.
        return self.pick(min(int(random() * self.total), self.total - 1))

    def pick_sticky(self, key: str) -> int:
        """The variant a sticky key is pinned to."""
        return self.pick(sticky_point(key, self.total))
