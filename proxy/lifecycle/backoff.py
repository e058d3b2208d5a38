"""Crash back-off: after consecutive failed starts or early exits, wait 1, 2, 4 … 60 s. Pure.

A start failure is kept as a `StartFailure` record (text, time, last output lines), never as
an exception object: each waiter is raised a fresh exception built from it, so no traceback
and no request body outlives its request.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
# A server that stayed up this long before exiting was not crash-looping: no back-off.
STABLE_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class StartFailure:
    """Why a start failed (or the server exited), when, and its last output lines."""

    message: str
    at: float


class Backoff:
    """Consecutive failures of one backend and when the next start may happen."""

    __slots__ = ("failures", "last", "retry_at")

    def __init__(self) -> None:
        self.failures = 0
        self.last: StartFailure | None = None
        self.retry_at = float("-inf")

    def failed(self, failure: StartFailure, ready_since: float | None = None) -> None:
        """Count a failed start, or an exit of a server READY since `ready_since`."""
        self.last = failure
        if ready_since is not None and failure.at - ready_since >= STABLE_AFTER_S:
            self.reset()
            return
        self.failures += 1
        delay = min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (self.failures - 1))
        self.retry_at = failure.at + delay

    def reset(self) -> None:
        """A stop we asked for, or an operator's unload: the next start is not held back."""
        self.failures = 0
        self.retry_at = float("-inf")

    def retry_after(self, now: float) -> float | None:
        """Seconds until the next start may happen, or None if it may happen now."""
        remaining = self.retry_at - now
        return remaining if remaining > 0 else None
