"""The listening socket and what clients may hold of it: the open-file limit, the connection
cap Granian enforces, and the TLS files. Standard library only (cli.py hands all of this to
Granian, the only module that imports it).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import resource
import socket
import ssl
from dataclasses import dataclass

from swapgate.proxy.config.model import DEFAULT_CONNECTION_LIMIT, Config, Connections

log = logging.getLogger("swapgate")

# Connections the kernel queues for Granian while it accepts no more (it is at the limit):
# listen() caps this at net.core.somaxconn, 4096 on current Linux.
BACKLOG = 4096
# Descriptors kept free for what is not a client connection: upstream connections, the
# model servers' pipes, log files. A quarter of the limit, at least this many.
MIN_SPARE_FDS = 256


@dataclass(frozen=True, slots=True)
class OpenFiles:
    """RLIMIT_NOFILE before and after raising the soft limit to the hard one."""

    before: int
    soft: int
    hard: int


def raise_open_files() -> OpenFiles:
    """Raise the soft open-file limit to the hard limit: each client connection is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. macOS refuses more than kern.maxfilesperproc
            return OpenFiles(soft, soft, hard)
        return OpenFiles(soft, target, hard)
    return OpenFiles(soft, soft, hard)


def connection_limit(configured: int | None, open_files: int) -> tuple[int, str | None]:
    """The connection cap to give Granian, and a warning if the configured one cannot hold.

    Above the open-file limit Granian's accept would fail with EMFILE, so the cap leaves
    spare descriptors; unset, it is DEFAULT_CONNECTION_LIMIT or what the descriptors allow.
    """
    fits = max(1, open_files - max(MIN_SPARE_FDS, open_files // 4))
    if configured is None:
        return min(DEFAULT_CONNECTION_LIMIT, fits), None
    if configured <= fits:
        return configured, None
    return fits, (
        f"connections.limit {configured} lowered to {fits}: the open-file limit is "
        f"{open_files} — raise it (ulimit -n, LimitNOFILE= in a systemd unit) to allow more"
    )


@dataclass(frozen=True, slots=True)
class Tls:
    """The --tls-cert-file / --tls-key-file pair, already checked by listener.tls_problem."""

    cert: str
    key: str


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What Granian enforces per client connection (README "Connections, timeouts and TLS")."""

    connections: Connections
    max_connections: int  # the effective cap: connections.limit within the open-file limit
    tls: Tls | None


def client_limits(config: Config, tls: Tls | None) -> ClientLimits:
    """Raise the open-file limit and fit the connection cap in it, logging both."""
    files = raise_open_files()
    if files.soft != files.before:
        log.info("open-file limit raised from %d to %d (the hard limit)", files.before, files.soft)
    limit, warning = connection_limit(config.connections.limit, files.soft)
    if warning:
        log.warning("%s", warning)
    return ClientLimits(config.connections, limit, tls)


def tls_problem(cert: str | None, key: str | None) -> str | None:
    """Why --tls-cert-file/--tls-key-file cannot serve TLS, if they cannot."""
    if (cert is None) != (key is None):
        given, missing = ("--tls-cert-file", "--tls-key-file")[:: 1 if cert else -1]
        return f"{given} needs {missing} too: give both, or neither to serve plain HTTP"
    if cert is None or key is None:
        return None
    for flag, path in (("--tls-cert-file", cert), ("--tls-key-file", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            return f"{flag}: cannot read {path}: {exc.strerror or exc}"
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        return (
            f"--tls-cert-file {cert} and --tls-key-file {key} are not a PEM certificate and its "
            f"private key ({exc.reason or exc})"
        )
    return None


def open_listener(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A TCP socket listening on host:port, bound without SO_REUSEPORT.

    Without SO_REUSEPORT the kernel refuses a second bind (EADDRINUSE) while this socket is
    open, so exactly one process owns the address; binding and listening here, before
    anything is started, leaves no window between a check and the bind. SO_REUSEADDR only
    lets a restart bind over connections of the previous run still in TIME_WAIT.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Granian's own socket
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def format_address(host: str, port: int) -> str:
    """host:port as a user writes it: IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_error(host: str, port: int, exc: OSError) -> str:
    """What to tell the user when the address cannot be bound."""
    shown = format_address(host, port)
    if exc.errno == errno.EADDRINUSE:
        return f"{shown} is already in use (another swapgate?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {shown}: cannot resolve {host!r} ({exc.strerror})"
    return f"cannot listen on {shown}: {exc.strerror or exc}"


def exposure_warning(listener: socket.socket, shown: str, config: Config) -> str | None:
    """The warning for a listener reachable beyond this machine with no key at all, if any."""
    if config.api_keys or config.keys:
        return None
    ip = ipaddress.ip_address(listener.getsockname()[0].split("%")[0])
    if ip.is_loopback or (ip.version == 6 and (ip.ipv4_mapped or ip).is_loopback):
        return None
    return (
        f"listening on {shown} without API keys: anyone who can reach this port can use and "
        "unload every model — set apiKeys or keys, or listen on 127.0.0.1"
    )
