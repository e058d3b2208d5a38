"""API keys (llama-swap's `apiKeys`): a request must carry one, as a bearer token, in
`x-api-key` (Anthropic clients) or as the password of HTTP Basic auth (browsers)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable

from blacksheep import Request

from swapgate.proxy.errors import Unauthorized


class ApiKeys:
    """The configured keys; `check()` raises Unauthorized unless the request has one."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(key.encode() for key in keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def check(self, request: Request) -> None:
        offered = _offered_key(request)
        # Compare against every key in constant time: no timing hint about which was close.
        if offered is None or not any(hmac.compare_digest(offered, key) for key in self._keys):
            msg = (
                "missing or invalid API key: send 'Authorization: Bearer <key>' "
                "or 'x-api-key: <key>' with one of the keys in apiKeys"
            )
            raise Unauthorized(msg)


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
