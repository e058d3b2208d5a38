"""RequestFacts: the parts of a request the router may look at. Stdlib only, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the HTTP layer extracted from one request.

    `headers` must have lower-cased names (the router lower-cases rule header names once at
    compile time, so matching is a plain dict lookup). `body_fields` is the parsed top-level
    JSON object, used only for `body:<field>` sticky keys; None when the body is not JSON.
    """

    model: str
    path: str
    headers: Mapping[str, str]
    body_fields: Mapping[str, object] | None = None
