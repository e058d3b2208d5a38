"""Which running backends must stop before a target may run. Pure: no I/O, no logging.

llama-swap's group semantics: every model belongs to one group (ungrouped models to
"(default)": swap, exclusive, not persistent).
- `swap: true`: at most one member of the group runs at a time.
- `exclusive: true`: starting a member stops every model of other groups,
- except members of `persistent: true` groups, which only their own group's swap stops.
VRAM budgets and priorities will extend this function; the pool only asks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_GROUP = "(default)"


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """How one group's members coexist with each other and with other groups."""

    name: str
    swap: bool = True
    exclusive: bool = True
    persistent: bool = False


DEFAULT_POLICY = GroupPolicy(DEFAULT_GROUP)


@dataclass(frozen=True, slots=True)
class Groups:
    """Model id -> its group's policy; models not listed are in the default group."""

    of_model: Mapping[str, GroupPolicy]

    def policy(self, model: str) -> GroupPolicy:
        return self.of_model.get(model, DEFAULT_POLICY)


NO_GROUPS = Groups({})


def evictions_for(
    target: str, active: Iterable[str], groups: Groups = NO_GROUPS
) -> tuple[str, ...]:
    """The backends (starting, ready or stopping) to stop so `target` can run, sorted."""
    mine = groups.policy(target)
    victims = []
    for model in active:
        if model == target:
            continue
        theirs = groups.policy(model)
        if theirs.name == mine.name:
            if mine.swap:
                victims.append(model)
        elif mine.exclusive and not theirs.persistent:
            victims.append(model)
    return tuple(sorted(victims))


def groups_from_config(raw: object) -> Groups:
    """Build Groups from the validated `groups` section ({name: {swap, exclusive, persistent,
    members_sorted}}); anything else means no groups."""
    if not isinstance(raw, Mapping):
        return NO_GROUPS
    of_model: dict[str, GroupPolicy] = {}
    for name, body in raw.items():
        if not isinstance(body, Mapping):
            continue
        policy = GroupPolicy(
            str(name),
            swap=bool(body.get("swap", True)),
            exclusive=bool(body.get("exclusive", True)),
            persistent=bool(body.get("persistent", False)),
        )
        members = body.get("members_sorted") or body.get("members") or []
        for member in members if isinstance(members, list) else []:
            of_model[str(member)] = policy
    return Groups(of_model)
