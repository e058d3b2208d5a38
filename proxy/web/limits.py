"""Per-key limits: requests in flight (`maxConcurrent`) and a token bucket (`requestsPerMinute`).

The bucket holds `requestsPerMinute` tokens and refills continuously at `requestsPerMinute / 60`
tokens a second: a quiet key may send a whole minute's worth at once, then one request every
60 / requestsPerMinute seconds. A refused request takes no token and no slot.

Pure and synchronous (the clock is a constructor argument), so admission is one step with no
await inside. Imports only the standard library and proxy.errors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from swapgate.proxy.errors import ConcurrencyLimited, RateLimited

Clock = Callable[[], float]
SECONDS_PER_MINUTE = 60.0


class TokenBucket:
    """`per_minute` tokens at most, refilled at `per_minute / 60` a second."""

    __slots__ = ("_clock", "_rate", "_stamp", "_tokens", "capacity")

    def __init__(self, per_minute: int, clock: Clock = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self._rate = per_minute / SECONDS_PER_MINUTE
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def take(self) -> float:
        """Take a token and return 0, or take nothing and return the seconds until one is
        there."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


class KeyLimits:
    """The limits of one key. `admit()` either raises 429 or counts the request in; the
    caller must call `release()` exactly once when the request is over."""

    __slots__ = ("_bucket", "_limit", "in_flight", "name")

    def __init__(
        self, name: str, *, max_concurrent: int, per_minute: int, clock: Clock = time.monotonic
    ) -> None:
        self.name = name
        self._limit = max_concurrent  # 0 = no limit
        self._bucket = TokenBucket(per_minute, clock) if per_minute else None
        self.in_flight = 0

    def admit(self) -> None:
        """Count one request in, or raise ConcurrencyLimited / RateLimited (with the
        seconds to wait, rounded up, as Retry-After)."""
        # The slot is checked before the bucket is touched: a refused request costs nothing.
        if self._limit and self.in_flight >= self._limit:
            msg = (
                f"key {self.name!r} already has {self.in_flight} requests in flight "
                f"(maxConcurrent {self._limit}); retry when one has finished"
            )
            raise ConcurrencyLimited(msg, code="key_concurrency_limit")
        if self._bucket is not None:
            wait = self._bucket.take()  # the last check: nothing can refuse after it
            if wait > 0:
                per_minute = int(self._bucket.capacity)
                msg = (
                    f"key {self.name!r} is over its requestsPerMinute ({per_minute}); "
                    f"retry in {math.ceil(wait)} s"
                )
                raise RateLimited(msg, retry_after_s=float(math.ceil(wait)))
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
