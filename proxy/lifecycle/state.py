"""Backend states and the one table of allowed transitions. Stdlib only."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final


class BackendState(enum.StrEnum):
    """Where one upstream server is in its life; the string values are what /running shows."""

    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    FAILED = "failed"


_S = BackendState

TRANSITIONS: Final[Mapping[BackendState, frozenset[BackendState]]] = {
    _S.STOPPED: frozenset({_S.STARTING}),
    # STARTING -> STOPPING: an unload or swap arrived while the server was still loading.
    _S.STARTING: frozenset({_S.READY, _S.STOPPING, _S.FAILED}),
    # READY -> FAILED: the process exited on its own.
    _S.READY: frozenset({_S.STOPPING, _S.FAILED}),
    _S.STOPPING: frozenset({_S.STOPPED, _S.FAILED}),
    # FAILED -> STARTING: the next request retries; FAILED -> STOPPED: an explicit unload.
    _S.FAILED: frozenset({_S.STARTING, _S.STOPPED}),
}


class InvalidTransition(RuntimeError):
    """A programming error: code asked for a move the table forbids. Never caught."""


def check_transition(backend_id: str, old: BackendState, new: BackendState) -> None:
    """Raise InvalidTransition unless `old -> new` is in TRANSITIONS."""
    if new not in TRANSITIONS[old]:
        msg = f"{backend_id}: {old} -> {new} not allowed"
        raise InvalidTransition(msg)
