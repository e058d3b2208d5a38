"""Which running backends must stop before a target may run. Pure: no I/O, no logging.

Today's policy is llama-swap's default without groups: one model at a time. Groups, VRAM
budgets and persistent members will extend `evictions_for` without touching the pool.
"""

from __future__ import annotations

from collections.abc import Iterable


def evictions_for(target: str, active: Iterable[str]) -> tuple[str, ...]:
    """The backends (starting, ready or stopping) to stop so that `target` can run, in order."""
    return tuple(sorted(model for model in active if model != target))
