"""Lease: one in-flight request's hold on a ready backend. Stdlib only.

The relay releases it exactly once, in `finally`, so a client that disconnects frees it too;
the backend counts leases to know when it is idle (TTL, drains, the scheduler's busy check).
"""

from __future__ import annotations

from collections.abc import Callable


class Lease:
    """A hold on one backend generation at `url`; `release()` is idempotent."""

    __slots__ = ("_on_release", "_released", "generation", "model", "url")

    def __init__(
        self, model: str, url: str, generation: int, on_release: Callable[[], None]
    ) -> None:
        self.model = model
        self.url = url
        self.generation = generation  # pooled connections of older generations are stale
        self._on_release = on_release
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._on_release()
