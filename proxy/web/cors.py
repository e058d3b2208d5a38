"""Permissive CORS preflight answers, as llama-swap gives, so browser clients can call in."""

from __future__ import annotations

import re
from http import HTTPStatus

from blacksheep import Request, Response

_DEFAULT_ALLOWED = b"Content-Type, Authorization, Accept, X-Requested-With"
_HEADER_NAME = re.compile(rb"^[A-Za-z0-9-]+$")


def cors_preflight(request: Request) -> Response:
    """204 allowing any origin and method, and the headers the browser asked for."""
    asked = request.get_first_header(b"access-control-request-headers")
    allowed = _sanitize(asked) if asked else _DEFAULT_ALLOWED
    headers = [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        (b"access-control-allow-headers", allowed or _DEFAULT_ALLOWED),
        (b"access-control-max-age", b"86400"),
    ]
    return Response(int(HTTPStatus.NO_CONTENT), headers, None)


def _sanitize(value: bytes) -> bytes:
    """Only well-formed header names go back: never reflect arbitrary bytes."""
    names = [part.strip() for part in value.split(b",")]
    return b", ".join(name for name in names if _HEADER_NAME.match(name))
