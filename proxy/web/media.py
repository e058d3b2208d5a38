"""The Content-Type each POST endpoint accepts, so no web page can send it without a preflight.

Browsers send `text/plain`, `application/x-www-form-urlencoded` and `multipart/form-data`
bodies cross-origin without asking first. An endpoint that parsed any body as JSON could
therefore be driven by any page; here JSON endpoints take only a JSON type, uploads only
multipart, and endpoints without a body refuse a body of any other type (415).
"""

from __future__ import annotations

import enum

from blacksheep import Request

from swapgate.proxy.errors import UnsupportedMediaType

_JSON = b"application/json"
_JSON_SUFFIX = b"+json"
_MULTIPART = b"multipart/form-data"


class BodyKind(enum.StrEnum):
    """What an endpoint reads from the request body."""

    JSON = "json"  # application/json or any */*+json
    MULTIPART = "multipart"  # multipart/form-data uploads
    JSON_OR_MULTIPART = "json or multipart"  # endpoints with both forms (image edits)
    NONE = "none"  # no body; a JSON one is tolerated and ignored


def media_type(content_type: bytes | None) -> bytes:
    """`Application/JSON; charset=utf-8` -> `application/json`; b"" when absent."""
    if not content_type:
        return b""
    return content_type.partition(b";")[0].strip().lower()


def is_json(media: bytes) -> bool:
    return media == _JSON or (media.endswith(_JSON_SUFFIX) and b"/" in media)


def accepts(kind: BodyKind, media: bytes, has_body: bool) -> bool:
    """True when an endpoint that reads `kind` takes a body of type `media`."""
    match kind:
        case BodyKind.JSON:
            return is_json(media)
        case BodyKind.MULTIPART:
            return media == _MULTIPART
        case BodyKind.JSON_OR_MULTIPART:
            return media == _MULTIPART or is_json(media)
        case BodyKind.NONE:
            return not has_body or is_json(media)


def has_body(request: Request) -> bool:
    """True when the request declares a body (a non-zero length, or chunked)."""
    length = request.get_first_header(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return request.get_first_header(b"transfer-encoding") is not None


def check_media(kind: BodyKind, request: Request) -> None:
    """Raise UnsupportedMediaType unless the endpoint takes this request's body."""
    media = media_type(request.content_type())
    # has_body only matters (and is only read) for endpoints that take none.
    if accepts(kind, media, kind is BodyKind.NONE and has_body(request)):
        return
    got = media.decode("latin-1") if media else "none"
    wanted = {
        BodyKind.JSON: "Content-Type: application/json",
        BodyKind.MULTIPART: "Content-Type: multipart/form-data",
        BodyKind.JSON_OR_MULTIPART: "Content-Type: application/json or multipart/form-data",
        BodyKind.NONE: "no body (or a JSON one)",
    }[kind]
    path: str = request.scope["path"]
    msg = (
        f"{request.method} {path} needs {wanted}, got Content-Type {got} (other types are "
        "refused so that no web page can send this request without the browser asking first)"
    )
    raise UnsupportedMediaType(msg)
