"""The browser guard: ASGI middleware that lets no web page drive swapgate by accident.

Three checks on every HTTP request, before the app sees it:
  Host    must name this server: loopback names and addresses (`localhost`, `*.localhost`,
          127.0.0.0/8, `[::1]`), the listen address (any IP literal when listening on
          0.0.0.0 or ::), or an `allowedHosts` entry; else 421. This stops DNS rebinding,
          where a page's own name comes to point at 127.0.0.1 and so reads it same-origin.
          A request without Host (HTTP/1.0) passes: no rebinding without one.
  Origin  absent, this server's own, or in `cors.allowOrigins`; else 403. Every browser
          sends Origin on cross-origin requests that could change state (POST, fetch of
          any method), so a page elsewhere cannot unload a model or start a chat.
  Embeds  a request without Origin that the browser marks as made by another site's page
          (`Sec-Fetch-Site`, not a navigation: an <img> or <script>) gets 403, so no page
          starts a model through GET /upstream/{model}/...
Allowed cross-origin responses get their CORS headers here. The common case (Host
`127.0.0.1:PORT`, no Origin) costs one header scan and one set lookup; `send` is wrapped
only for allowed cross-origin requests. Speaks ASGI itself; the origin decisions are
cors.py's, the error bodies envelope.py's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from swapgate.proxy.errors import MisdirectedRequest, OriginNotAllowed, SwapgateError
from swapgate.proxy.web.access import ASGIApp, Message, Receive, Scope, Send
from swapgate.proxy.web.cors import CorsPolicy, is_same_origin
from swapgate.proxy.web.envelope import error_payload, is_anthropic_path

ANY = "*"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
LOOPBACK_SUFFIX = b".localhost"
# Host forms of the wildcard listen addresses (names compared, nothing is bound here).
WILDCARD_ADDRESSES = frozenset({b"0.0.0.0", b"[::]", b"::", b""})
_OWN_SITE = (b"same-origin", b"none")  # Sec-Fetch-Site of this server's pages, typed URLs
_START = "http.response.start"
_JSON_HEADERS = [(b"content-type", b"application/json")]


def host_name(value: bytes) -> bytes:
    """The name part of a Host header value, lower case: `[::1]:8080` -> `[::1]`,
    `Example.com.:80` -> `example.com`."""
    value = value.strip().lower()
    if value.startswith(b"["):
        end = value.find(b"]")
        return value[: end + 1] if end > 0 else value
    name, sep, port = value.rpartition(b":")
    if not sep or not port.isdigit():
        name = value
    return name.removesuffix(b".")


def _ip_of(name: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a Host name spells (`127.0.0.2`, `[::1]`), or None for a DNS name."""
    text = name[1:-1] if name.startswith(b"[") and name.endswith(b"]") else name
    try:
        return ipaddress.ip_address(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _host_form(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    if isinstance(ip, ipaddress.IPv6Address):
        return f"[{ip.compressed}]".encode()
    return ip.compressed.encode()


class HostPolicy:
    """Which Host header values name this server.

    `listen_hosts`: the host swapgate was told to listen on and the address it bound
    (`myhost.lan`, `192.168.1.5`, or a wildcard address: then any IP literal is this
    machine's business, but never a DNS name). `allowed`: the normalised `allowedHosts`
    entries, exact names, `.example.com` (the domain and its subdomains) or `*` (no check).
    `port`, the listen port, lets the usual `name:port` values pass with one set lookup."""

    __slots__ = ("_any", "_any_ip", "_full", "_names", "_suffixes")

    def __init__(
        self, listen_hosts: Iterable[str], allowed: Iterable[str], port: int | None = None
    ) -> None:
        listen = [_listen_name(host) for host in listen_hosts]
        entries = list(allowed)
        self._any = ANY in entries
        self._any_ip = any(host in WILDCARD_ADDRESSES for host in listen)
        names = {name.encode() for name in LOOPBACK_NAMES}
        names.update(host for host in listen if host not in WILDCARD_ADDRESSES)
        names.update(e.encode() for e in entries if not e.startswith(".") and e != ANY)
        self._names = frozenset(names)
        ports = () if port is None else (b"%s:%d" % (name, port) for name in names)
        self._full = self._names | frozenset(ports)
        suffixes = [e.encode() for e in entries if e.startswith(".")]
        self._suffixes = (LOOPBACK_SUFFIX, *suffixes)

    def allows(self, host: bytes) -> bool:
        """True when the Host header value `host` names this server."""
        if self._any or host in self._full:
            return True
        name = host_name(host)
        # ".example.com" also allows "example.com" itself.
        if name in self._names or name.endswith(self._suffixes) or b"." + name in self._suffixes:
            return True
        ip = _ip_of(name)
        if ip is None:
            return False
        return ip.is_loopback or self._any_ip or _host_form(ip) in self._names


def _listen_name(host: str) -> bytes:
    """A listen host (`::1`, `[::1]:8080`, `myhost.lan:8080`) as browsers write it in Host:
    no port, IPv6 compressed in brackets."""
    ip = _ip_of(host.split("%")[0].encode())
    if ip is not None:
        return _host_form(ip)
    name = host_name(host.encode())
    ip = _ip_of(name)
    return name if ip is None else _host_form(ip)


class BrowserGuard:
    """ASGI middleware: the Host and Origin checks (see the module docstring)."""

    __slots__ = ("app", "cors", "hosts")

    def __init__(self, app: ASGIApp, hosts: HostPolicy, cors: CorsPolicy) -> None:
        self.app = app
        self.hosts = hosts
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = site = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                site = value
        refusal = self.refusal(scope, host, origin, site)
        if refusal is not None:
            await _refuse(scope, send, refusal)
            return
        # An allowed other origin: its response says so (the preflight handler writes its own).
        if origin is not None and scope["method"] != "OPTIONS" and not is_same_origin(origin, host):
            send = _with_headers(send, self.cors.response_headers(origin))
        await self.app(scope, receive, send)

    def refusal(
        self, scope: Scope, host: bytes | None, origin: bytes | None, site: bytes | None
    ) -> SwapgateError | None:
        """Why this request may not reach the app, or None."""
        # No Host, or the empty one Granian gives an HTTP/1.0 request without it: no browser
        # sends that, so no rebinding page can be behind it.
        if host and not self.hosts.allows(host):
            return _misdirected(host)
        if origin is None:
            # No Origin: not a browser, or a GET a page embeds (<img>, <script>). Fetch
            # Metadata tells the embedded ones; only a navigation from another site passes.
            if site is None or site in _OWN_SITE or self.cors.allows_any or _navigates(scope):
                return None
            return _embedded(scope)
        if is_same_origin(origin, host) or self.cors.allows(origin):
            return None
        return _foreign(origin)


def _navigates(scope: Scope) -> bool:
    """True for a top-level navigation (a followed link): the user sees where it goes."""
    return any(
        name == b"sec-fetch-mode" and value == b"navigate" for name, value in scope["headers"]
    )


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == _START:
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return sender


def _misdirected(host: bytes) -> MisdirectedRequest:
    name = host_name(host).decode("latin-1")
    return MisdirectedRequest(
        f"Host {host.decode('latin-1')!r} is not a name of this server (a web page may be "
        f'rebinding DNS to reach it) — add "{name}" to allowedHosts in the config to reach '
        "swapgate by that name"
    )


def _embedded(scope: Scope) -> OriginNotAllowed:
    path: str = scope["path"]
    return OriginNotAllowed(
        f"{path} may not be loaded by a web page of another site (Sec-Fetch-Site) — call it "
        "with fetch from an origin in cors.allowOrigins"
    )


def _foreign(origin: bytes) -> OriginNotAllowed:
    shown = origin.decode("latin-1")
    return OriginNotAllowed(
        f"requests from web pages of origin {shown!r} are not allowed — add it to "
        "cors.allowOrigins in the config if that page should use swapgate"
    )


async def _refuse(scope: Scope, send: Send, exc: SwapgateError) -> None:
    body = error_payload(exc, anthropic=is_anthropic_path(scope["path"]))
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": _START, "status": int(exc.status), "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
