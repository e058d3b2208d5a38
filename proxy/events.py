"""Event records the lifecycle emits (for logs today; metrics and progress streams later)."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.lifecycle.state import BackendState


@dataclass(frozen=True, slots=True)
class StateChanged:
    """A backend moved from `old` to `new` at monotonic time `at`."""

    model: str
    old: BackendState
    new: BackendState
    reason: str
    at: float
