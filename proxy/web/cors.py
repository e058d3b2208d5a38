"""Which browser origins may call swapgate, and the CORS headers that say so.

A request whose `Origin` is this server's own (the scheme-less part equals the Host it came
to) is same-origin. Any other origin must be listed in `cors.allowOrigins` (default: none),
or the guard answers 403. Preflights (OPTIONS) allow only those origins: the matching origin
is echoed with `Vary: Origin`; `["*"]` answers `*`, llama-swap's open CORS. Credentials
(cookies, stored Basic auth) are never allowed cross-origin: a client sends its key itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus

from blacksheep import Request, Response

ANY = "*"
_DEFAULT_ALLOWED = b"Content-Type, Authorization, Accept, X-Requested-With"
_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_HEADER_NAME = re.compile(rb"^[A-Za-z0-9-]+$")
_SCHEMES = (b"http://", b"https://")
_VARY = (b"vary", b"Origin")


def is_same_origin(origin: bytes, host: bytes | None) -> bool:
    """True when `origin` (as the browser sent it) is the origin of `host`, the Host the
    request came to. Scheme-blind: behind a TLS proxy the page is https, swapgate http."""
    if host is None:
        return False
    origin = origin.lower()
    for scheme in _SCHEMES:
        if origin.startswith(scheme):
            return origin[len(scheme) :] == host.lower()
    return False


class CorsPolicy:
    """The allowed other origins (normalised as config/security.py does) and their headers."""

    __slots__ = ("_any", "_origins")

    def __init__(self, origins: Iterable[str]) -> None:
        listed = tuple(origins)
        self._any = ANY in listed
        self._origins = frozenset(origin.encode() for origin in listed if origin != ANY)

    @property
    def allows_any(self) -> bool:
        """True for `["*"]`: every origin, and pages of other sites embedding swapgate URLs."""
        return self._any

    def allows(self, origin: bytes) -> bool:
        """True when a page of `origin` (another origin than the server's) may call in."""
        return self._any or origin.lower() in self._origins

    def response_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """What an allowed cross-origin response carries so the page may read it."""
        if self._any:
            return [(b"access-control-allow-origin", b"*")]
        return [(b"access-control-allow-origin", origin), _VARY]

    def preflight(self, request: Request) -> Response:
        """204 for an OPTIONS request. The guard has refused origins not allowed, so an origin
        here is allowed (or is this server's own): the CORS headers go to allowed others."""
        origin = request.get_first_header(b"origin")
        host = request.get_first_header(b"host")
        headers: list[tuple[bytes, bytes]] = [(b"allow", _METHODS)]
        if origin is not None and not is_same_origin(origin, host) and self.allows(origin):
            asked = request.get_first_header(b"access-control-request-headers")
            allowed = _sanitize(asked) if asked else _DEFAULT_ALLOWED
            headers += self.response_headers(origin)
            headers += [
                (b"access-control-allow-methods", _METHODS),
                (b"access-control-allow-headers", allowed or _DEFAULT_ALLOWED),
                (b"access-control-max-age", b"86400"),
            ]
        return Response(int(HTTPStatus.NO_CONTENT), headers, None)


def _sanitize(value: bytes) -> bytes:
    """Only well-formed header names go back: never reflect arbitrary bytes."""
    names = [part.strip() for part in value.split(b",")]
    return b", ".join(name for name in names if _HEADER_NAME.match(name))
