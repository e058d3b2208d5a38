"""The backend state table: every (old, new) pair is either allowed or refused by name."""

from __future__ import annotations

import itertools

import pytest

from swapgate.proxy.lifecycle.state import (
    TRANSITIONS,
    BackendState,
    InvalidTransition,
    check_transition,
)

_S = BackendState

ALLOWED = {
    (_S.STOPPED, _S.STARTING),
    (_S.STARTING, _S.READY),
    (_S.STARTING, _S.STOPPING),
    (_S.STARTING, _S.FAILED),
    (_S.READY, _S.STOPPING),
    (_S.READY, _S.FAILED),
    (_S.STOPPING, _S.STOPPED),
    (_S.STOPPING, _S.FAILED),
    (_S.FAILED, _S.STARTING),
    (_S.FAILED, _S.STOPPED),
}
ALL_PAIRS = list(itertools.product(BackendState, repeat=2))


def test_table_covers_every_state_and_matches_the_design() -> None:
    """TRANSITIONS has a row per state and allows exactly the ten designed moves."""
    assert set(TRANSITIONS) == set(BackendState)
    assert len(ALL_PAIRS) == 25
    assert {(old, new) for old, targets in TRANSITIONS.items() for new in targets} == ALLOWED


@pytest.mark.parametrize(("old", "new"), sorted(ALLOWED))
def test_allowed_transition_passes(old: BackendState, new: BackendState) -> None:
    """An allowed move returns without raising."""
    check_transition("m", old, new)


@pytest.mark.parametrize(("old", "new"), sorted(set(ALL_PAIRS) - ALLOWED))
def test_forbidden_transition_raises_naming_both_states(
    old: BackendState, new: BackendState
) -> None:
    """A forbidden move (including every self-move) raises InvalidTransition naming id and states."""
    with pytest.raises(InvalidTransition) as caught:
        check_transition("llama3", old, new)
    assert str(caught.value) == f"llama3: {old} -> {new} not allowed"


def test_no_state_may_move_to_itself() -> None:
    """Self-moves are refused, so a repeated _move() is always a visible bug."""
    assert all(state not in TRANSITIONS[state] for state in BackendState)


def test_state_values_are_the_display_strings() -> None:
    """The StrEnum values are the lower-case names /running shows."""
    assert [str(s) for s in BackendState] == ["stopped", "starting", "ready", "stopping", "failed"]
