"""API keys: llama-swap's `apiKeys` (every key may do everything) and swapgate's `keys` (named,
with scopes, allowed models and limits). A request carries its key as a bearer token, in
`x-api-key` (Anthropic clients) or as the password of HTTP Basic auth (browsers).

Which scope an endpoint needs is decided by its path (`required_scope`): logs under /logs,
admin for /running, /unload, /api/* and /metrics, inference for everything else that is
guarded (the inference POST paths, /upstream/*, GET /v1/models*).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from dataclasses import dataclass

from blacksheep import Request

from swapgate.proxy.config.keys import ALL_SCOPES, KeyScope, ModelAccess
from swapgate.proxy.config.model import Config
from swapgate.proxy.errors import Forbidden, Unauthorized
from swapgate.proxy.web.access import KEY_NAME_KEY, note_key
from swapgate.proxy.web.limits import Clock, KeyLimits

_LOGS = ("/logs",)
_ADMIN = ("/running", "/unload", "/api/", "/metrics")


@dataclass(frozen=True, slots=True)
class Grant:
    """What one key may do. `models` None: every model; `limits` None: no limits."""

    name: str
    scopes: frozenset[KeyScope]
    models: ModelAccess | None = None
    limits: KeyLimits | None = None


def required_scope(path: str) -> KeyScope:
    """The scope an endpoint at `path` needs."""
    if _under(path, _LOGS):
        return KeyScope.LOGS
    if _under(path, _ADMIN):
        return KeyScope.ADMIN
    return KeyScope.INFERENCE


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    """`path` is a prefix itself or below it (`/logs`, `/logs/stream`; not `/logsx`)."""
    for prefix in prefixes:
        if path.startswith(prefix) and (
            prefix.endswith("/") or len(path) == len(prefix) or path[len(prefix)] == "/"
        ):
            return True
    return False


class Keyring:
    """Every configured key (apiKeys and keys) with what it grants."""

    __slots__ = ("_by_name", "_entries")

    def __init__(self, config: Config, clock: Clock = time.monotonic) -> None:
        entries: list[tuple[bytes, Grant]] = [
            (key.encode(), Grant(f"apiKeys[{i}]", ALL_SCOPES))
            for i, key in enumerate(config.api_keys)
        ]
        for spec in config.keys:
            limits = None
            if spec.max_concurrent or spec.requests_per_minute:
                limits = KeyLimits(
                    spec.name,
                    max_concurrent=spec.max_concurrent,
                    per_minute=spec.requests_per_minute,
                    clock=clock,
                )
            models = None if spec.models is None else ModelAccess(spec.models, config)
            entries.append((spec.key.encode(), Grant(spec.name, spec.scopes, models, limits)))
        self._entries = tuple(entries)
        self._by_name = {grant.name: grant for _, grant in entries}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def identify(self, request: Request) -> Grant:
        """The Grant of the request's key, or Unauthorized."""
        offered = _offered_key(request)
        found: Grant | None = None
        if offered is not None:
            # Compare against every key in constant time and never stop early: no timing
            # hint about which key was close, or how many keys come before it.
            for key, grant in self._entries:
                if hmac.compare_digest(offered, key) and found is None:
                    found = grant
        if found is None:
            msg = (
                "missing or invalid API key: send 'Authorization: Bearer <key>' "
                "or 'x-api-key: <key>' with one of the configured keys (apiKeys or keys)"
            )
            raise Unauthorized(msg)
        return found

    def grant_of(self, request: Request) -> Grant | None:
        """The Grant `admit` gave this request; None when it gave none (no keys configured,
        or a public endpoint)."""
        name = request.scope.get(KEY_NAME_KEY)
        return self._by_name.get(name) if isinstance(name, str) else None

    def admit(self, request: Request, scope: KeyScope) -> Grant:
        """Identify the request's key, note it on the request (for the access log and the
        handlers), and check it has `scope`: Unauthorized or Forbidden otherwise."""
        grant = self.identify(request)
        note_key(request, grant.name)  # names are unique: grant_of finds the grant by it
        if scope not in grant.scopes:
            msg = (
                f"key {grant.name!r} may not use {request.method} {request.scope['path']}: "
                f"it needs the {scope.value!r} scope — add it to the key's scopes in keys"
            )
            raise Forbidden(msg)
        return grant


def _offered_key(request: Request) -> bytes | None:
    header = request.get_first_header(b"x-api-key")
    if header:
        return header.strip()
    authorization = request.get_first_header(b"authorization")
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(b" ")
    if scheme.lower() == b"bearer":
        return value.strip()
    if scheme.lower() == b"basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        return decoded.partition(b":")[2]
    return None
