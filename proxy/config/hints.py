"""Hints for unknown keys: "did you mean" for close spellings, and advice for foreign keys.

A key is close to a known one when the two are equal ignoring case and separators
(`health_check_timeout` ~ `healthCheckTimeout`) or differ by a small edit; anything further
away gets no suggestion, because a wrong guess (`readyTimeout` -> `unloadTimeout`) misleads.
Keys that other tools use (`host`, `readyTimeout`, `maxRunningModels`, ...) get the advice
that says where the same setting lives in swapgate and llama-swap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_SEPARATORS = re.compile(r"[\s_.\-]+")
_HEALTH = "swapgate and llama-swap use healthCheckTimeout (top level)"
_IDLE = "to unload idle models, use globalTTL (top level) or ttl (per model)"

# normalised key -> advice, per level. Normalised: lower case, no separators.
FOREIGN_TOP: Mapping[str, str] = {
    "readytimeout": _HEALTH,
    "starttimeout": _HEALTH,
    "startuptimeout": _HEALTH,
    "timeout": "swapgate and llama-swap use healthCheckTimeout for start-up "
    "and timeouts (per model) for requests",
    "maxrunningmodels": "use groups or routing.router.use: fit",
    "host": "use --listen HOST:PORT",
    "port": "use --listen HOST:PORT",
    "listen": "use --listen HOST:PORT",
    "ttl": "use globalTTL (top level) or ttl (per model)",
    "idletimeout": _IDLE,
    "unloadafter": _IDLE,
}
FOREIGN_MODEL: Mapping[str, str] = {
    "readytimeout": _HEALTH,
    "starttimeout": _HEALTH,
    "startuptimeout": _HEALTH,
    "timeout": "use timeouts (per model) or healthCheckTimeout",
    "host": "the server's address goes in proxy (default http://localhost:${PORT})",
    "port": "the server's address goes in proxy; swapgate assigns ${PORT} for cmd",
    "command": "use cmd",
    "idletimeout": "use ttl",
    "unloadafter": "use ttl",
    "tools": "use capabilities.tools",
}


def normalise(key: str) -> str:
    """A key compared case- and separator-insensitively."""
    return _SEPARATORS.sub("", key).lower()


def _distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (optimal string alignment)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def _allowed_edits(length: int) -> int:
    """How far a spelling may be from a key and still be a typo of it."""
    return 1 if length <= 5 else 2 if length <= 11 else 3


def closest_key(key: str, known: Iterable[str]) -> str | None:
    """The known key `key` is most likely a misspelling of, or None when none is close."""
    wanted = normalise(key)
    best: tuple[int, str] | None = None
    for candidate in known:
        distance = _distance(wanted, normalise(candidate))
        if distance <= _allowed_edits(len(wanted)) and (best is None or distance < best[0]):
            best = (distance, candidate)
    return None if best is None else best[1]


def unknown_key_message(
    key: str,
    known: Iterable[str],
    foreign: Mapping[str, str] | None = None,
    elsewhere: Mapping[str, str] | None = None,
) -> str:
    """`unknown key (did you mean "ttl"?); ignored`, or the foreign key's advice after ` — `.

    `elsewhere` maps keys that belong at another level to where they go ("top level").
    """
    advice = (foreign or {}).get(normalise(key))
    if advice is not None:
        return f"unknown key; ignored — {advice}"
    close = closest_key(key, known)
    if close is not None:
        return f'unknown key (did you mean "{close}"?); ignored'
    other = closest_key(key, elsewhere or {})
    if other is not None and elsewhere is not None:
        if other == key:
            return f"not a key at this level; ignored — {key} goes at the {elsewhere[other]}"
        return f'unknown key (did you mean "{other}"? it goes at the {elsewhere[other]}); ignored'
    return "unknown key; ignored"
