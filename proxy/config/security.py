"""The browser-facing settings: top-level `allowedHosts` and `cors.allowOrigins`.

swapgate only (llama-swap has neither key: it answers any Host and gives every origin open
CORS). Both are read into `BrowserAccess`, normalised the way browsers write Host and Origin
(lower case, no trailing dot, no default port), so the HTTP layer compares bytes. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from swapgate.proxy.config.issues import Collector, Path, describe
from swapgate.proxy.config.model import BrowserAccess
from swapgate.proxy.config.validate import read_map, warn_unknown

ANY = "*"
CORS_KEYS = ("allowOrigins",)
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_PORT = 65535
# A DNS name (letters, digits, '-', '_', dots); IPv6 literals are checked by ipaddress.
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\Z")
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?P<host>\[[0-9a-f:.]+\]|[^/:?#\[\]]+)"
    r"(:(?P<port>\d{1,5}))?\Z"
)
_HOST_FIX = (
    'write a host name or address without scheme or port, ".example.com" for a domain and '
    'its subdomains, or "*" for any'
)
_ORIGIN_FIX = (
    'write scheme://host[:port] as the browser shows it, e.g. "http://localhost:3000", '
    'or "*" for any'
)


def read_browser_access(top: Mapping[str, object], out: Collector) -> BrowserAccess:
    """`allowedHosts` and `cors` from the (macro-expanded) top level of the document."""
    cors = read_map(out, ("cors",), top.get("cors"))
    warn_unknown(out, ("cors",), cors, CORS_KEYS)
    return BrowserAccess(
        allowed_hosts=_entries(
            top.get("allowedHosts"), ("allowedHosts",), out, host_entry, _HOST_FIX
        ),
        allow_origins=_entries(
            cors.get("allowOrigins"), ("cors", "allowOrigins"), out, origin_entry, _ORIGIN_FIX
        ),
    )


def host_entry(value: str) -> str | None:
    """An `allowedHosts` entry normalised (`Example.COM.` -> `example.com`), or None."""
    text = value.strip().lower()
    if text == ANY:
        return text
    suffix = text.startswith(".")
    name = normal_host(text[1:] if suffix else text)
    if name is None or (suffix and name.startswith("[")):
        return None
    return "." + name if suffix else name


def origin_entry(value: str) -> str | None:
    """A `cors.allowOrigins` entry normalised (`HTTP://Host:80` -> `http://host`), or None."""
    text = value.strip().lower()
    if text == ANY:
        return text
    match = _ORIGIN.match(text)
    if match is None:
        return None
    scheme, port = match["scheme"], match["port"]
    host = normal_host(match["host"])
    if host is None or (port is not None and not 0 < int(port) <= MAX_PORT):
        return None
    if port is None or int(port) == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


def normal_host(text: str) -> str | None:
    """A host name or address as a browser sends it in Host (IPv6 in brackets), or None."""
    text = text.removesuffix(".")
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if ":" in bare:
        try:
            return f"[{ipaddress.IPv6Address(bare).compressed}]"
        except ValueError:
            return None
    return text if _NAME.match(text) else None


def _entries(
    raw: object,
    path: Path,
    out: Collector,
    normalise: Callable[[str], str | None],
    fix: str,
) -> tuple[str, ...]:
    """A list of strings, each normalised; bad entries are errors at their index."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        out.error(path, f"expected list of strings, got {describe(raw)}")
        return ()
    kept: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            out.error((*path, i), f"expected string, got {describe(item)}")
            continue
        entry = normalise(item)
        if entry is None:
            out.error((*path, i), f"not a valid entry, got {describe(item)} — {fix}")
        elif entry not in kept:
            kept.append(entry)
    if ANY in kept and len(kept) > 1:
        out.warn(path, '"*" allows any value; the other entries are redundant')
        return (ANY,)
    return tuple(kept)
