"""HTTP method semantics: HEAD for every GET endpoint, 405 with `Allow` for a known path
asked with a method it does not take.

HEAD runs the GET handler and sends its status and headers; Granian leaves the body out (and
keeps the GET's Content-Length). A streamed GET answers HEAD without starting its stream:
the handler only builds the response, and the stream's generator is swapped for an empty one
before BlackSheep would run it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from blacksheep import Request, Response, StreamedContent

from swapgate.proxy.errors import MethodNotAllowed
from swapgate.proxy.web.envelope import error_response, is_anthropic_path

Handler = Callable[[Request], Awaitable[Response]]
_NOT_LISTED = frozenset({"OPTIONS"})  # answered on every path for CORS, not an API method


_NOTHING: tuple[bytes, ...] = ()


async def _no_parts() -> AsyncIterator[bytes]:
    """The body of a streamed GET's HEAD: nothing (an async generator, as BlackSheep wants)."""
    for part in _NOTHING:
        yield part


def head_of(handler: Handler) -> Handler:
    """The HEAD handler for a GET endpoint: the GET's status and headers, no body."""

    async def head(request: Request) -> Response:
        response = await handler(request)
        content = response.content
        if isinstance(content, StreamedContent):
            response.content = StreamedContent(content.type or b"", _no_parts)
        return response

    return head


def not_allowed_response(exc: MethodNotAllowed, path: str) -> Response:
    """405 in the path's API shape, with the `Allow` header."""
    response = error_response(exc, anthropic=is_anthropic_path(path))
    response.add_header(b"allow", ", ".join(exc.allow).encode())
    return response


class MethodTable:
    """The methods each registered path takes; paths ending in `/*` match what they prefix.
    Looked up only for requests no route answered, so plain dict and list scans will do."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self) -> None:
        self._exact: dict[str, list[str]] = {}
        self._prefixes: dict[str, list[str]] = {}

    def add(self, methods: Iterable[str], path: str) -> None:
        path = path.lower()  # BlackSheep matches paths case-insensitively
        table, key = (self._prefixes, path[:-1]) if path.endswith("/*") else (self._exact, path)
        known = table.setdefault(key, [])
        known.extend(m for m in methods if m not in known and m not in _NOT_LISTED)

    def allowed(self, path: str) -> tuple[str, ...]:
        """The methods `path` takes; empty for a path no endpoint has."""
        path = path.lower()
        methods = self._exact.get(path)
        if methods is None:
            methods = next(
                (found for prefix, found in self._prefixes.items() if path.startswith(prefix)),
                [],
            )
        return tuple(methods)

    def not_allowed(self, method: str, path: str) -> MethodNotAllowed | None:
        """The 405 for `method` on `path`, or None when the path is unknown (404)."""
        allowed = self.allowed(path)
        if not allowed:
            return None
        shown = ", ".join(allowed)
        return MethodNotAllowed(f"{path} does not take {method}; it takes {shown}", allow=allowed)
