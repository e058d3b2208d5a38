"""The web dashboard: `GET /ui` (the page), `GET /ui/{file}` (its scripts and styles) and
`GET /` (a redirect to `/ui`). All public: the page holds no data, and every call it makes
goes to the guarded API with the key the user types in.

The files ship in the package (`web/ui/`) and are read once, on first use, into memory. Only
names found in that folder are served (a dict lookup, so no path can climb out of it). Every
answer is `Cache-Control: no-cache` with an ETag, so a browser revalidates cheaply and an
upgrade shows at once. The page runs under a strict Content-Security-Policy: scripts, styles
and connections from this origin only, nothing inline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from importlib import resources

from blacksheep import Content, Request, Response

from swapgate.proxy.errors import EndpointNotFound
from swapgate.proxy.web.envelope import error_response
from swapgate.proxy.web.gateway import Gateway

UI_PACKAGE = "swapgate.proxy.web"
UI_FOLDER = "ui"
PAGE = "index.html"
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".svg": b"image/svg+xml",
}
CSP = (
    "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_COMMON = [
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_PAGE_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
]


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the dashboard as it is served."""

    body: bytes
    content_type: bytes
    etag: bytes


@cache
def assets() -> dict[str, Asset]:
    """Every servable file of the UI folder by name, read once."""
    found: dict[str, Asset] = {}
    for entry in (resources.files(UI_PACKAGE) / UI_FOLDER).iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        found[entry.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return found


def _serve(request: Request, name: str) -> Response:
    found = assets().get(name)
    if found is None:
        known = ", ".join(sorted(assets()))
        msg = f"no dashboard file {name!r}; the dashboard is at /ui (files: {known})"
        return error_response(EndpointNotFound(msg), anthropic=False)
    headers = [*_COMMON, (b"etag", found.etag)]
    if name == PAGE:
        headers += _PAGE_HEADERS
    if found.etag in _tags(request.get_first_header(b"if-none-match")):
        return Response(int(HTTPStatus.NOT_MODIFIED), headers, None)
    return Response(int(HTTPStatus.OK), headers, Content(found.content_type, found.body))


def _tags(header: bytes | None) -> list[bytes]:
    if not header:
        return []
    return [tag.strip().removeprefix(b"W/") for tag in header.split(b",")]


async def page(_gateway: Gateway, request: Request) -> Response:
    """GET /ui: the dashboard page."""
    return _serve(request, PAGE)


async def asset(_gateway: Gateway, request: Request) -> Response:
    """GET /ui/{file}: one of the page's files (`/ui/` is the page itself)."""
    name = request.scope["path"].removeprefix("/ui/")
    return _serve(request, name or PAGE)


async def root(_gateway: Gateway, _request: Request) -> Response:
    """GET /: to the dashboard."""
    headers = [(b"location", b"/ui"), (b"cache-control", b"no-cache")]
    return Response(int(HTTPStatus.FOUND), headers, None)
