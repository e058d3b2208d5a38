"""The budget of request-body bytes held at once across all requests (`maxBufferedRequestBytes`).

A pure accountant: each request gets a `BodyHold`, reserves bytes as they arrive (or all of
a declared Content-Length up front) and gives everything back once, when the request ends.
No I/O, no asyncio; imports only the standard library.
"""

from __future__ import annotations


class BodyBudget:
    """At most `limit` bytes reserved at once; `held` is what is reserved now."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def hold(self) -> BodyHold:
        """A new, empty hold for one request."""
        return BodyHold(self)

    def take(self, size: int) -> bool:
        """Reserve `size` more bytes if they fit (holds call this; see BodyHold)."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        """Return `size` reserved bytes (holds call this; see BodyHold)."""
        self.held -= size


class BodyHold:
    """One request's share of the budget: grows with `reserve`, returned by `release`."""

    __slots__ = ("_budget", "size")

    def __init__(self, budget: BodyBudget) -> None:
        self._budget = budget
        self.size = 0

    @property
    def budget(self) -> BodyBudget:
        return self._budget

    def reserve_up_to(self, total: int) -> bool:
        """Make this hold at least `total` bytes; False (nothing taken) if the budget is short.

        Taking the difference only means a body whose declared size was reserved up front
        costs nothing more as its chunks arrive.
        """
        more = total - self.size
        if more <= 0:
            return True
        if not self._budget.take(more):
            return False
        self.size = total
        return True

    def release(self) -> None:
        """Give every reserved byte back; a second call does nothing."""
        self._budget.give_back(self.size)
        self.size = 0
