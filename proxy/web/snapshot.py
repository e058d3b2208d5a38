"""Snapshot: one config with everything compiled from it that decides a request (router, keys).

The gateway holds exactly one snapshot and a reload replaces it with one assignment, so a
request that reads its snapshot once is decided against one config throughout: its key, its
route, its model's settings. Raises RuleError from compiling only for a config that skipped
validation (validation compiles the same rules).
"""

from __future__ import annotations

from dataclasses import dataclass

from swapgate.proxy.config.model import Config
from swapgate.proxy.web.access import HasScope
from swapgate.proxy.web.auth import Keyring
from swapgate.router import Router, compile_rules

_SCOPE_KEY = "swapgate.snapshot"  # the snapshot a request was admitted with, in its scope


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A config and what is compiled from it; immutable, shared by every request using it."""

    config: Config
    router: Router
    keyring: Keyring
    router_reads_headers: bool  # header facts are only built when some rule looks at them


def compile_snapshot(config: Config) -> Snapshot:
    """Compile `config`'s routes and keys."""
    names = {**{model_id: model_id for model_id in config.models}, **config.alias_index}
    router = compile_rules(config.routes, names, rewrite_default=config.rewrite_response_model)
    reads_headers = any(rule.match.headers or rule.sticky is not None for rule in config.routes)
    return Snapshot(config, router, Keyring(config), reads_headers)


def pin(request: HasScope, snapshot: Snapshot) -> None:
    """Decide the rest of `request` against `snapshot`."""
    request.scope[_SCOPE_KEY] = snapshot


def pinned(request: HasScope) -> Snapshot | None:
    """The snapshot `request` is decided against, if one was pinned."""
    found = request.scope.get(_SCOPE_KEY)
    return found if isinstance(found, Snapshot) else None
