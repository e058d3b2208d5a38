"""Readiness probe: poll a server's health endpoint until 200, racing the child's exit.

Polls every 5 ms for the first two seconds (most small servers are healthy by then, and a
late poll is added straight to the user's wait), then back off gently to 100 ms for servers
that load for minutes. While a server on this machine is not listening yet, a poll is a bare
TCP connect (refused at once, a few syscalls) rather than an HTTP request: the child is
usually starting on the same cores, and aiohttp's failed-connect path costs enough CPU per
poll to slow that start measurably. The only aiohttp user in lifecycle/.
"""

from __future__ import annotations

import asyncio
import socket
import time
from http import HTTPStatus
from urllib.parse import urlsplit

import aiohttp

_FAST_INTERVAL_S = 0.005
_FAST_PHASE_S = 2.0
_MAX_INTERVAL_S = 0.1
_BACKOFF = 1.2
_PROBE_TIMEOUT_S = 2.0


class HealthTimeout(Exception):
    """The server did not answer 200 within the deadline."""


async def wait_healthy(
    session: aiohttp.ClientSession,
    url: str | None,
    exited: asyncio.Future[int],
    timeout_s: float,
) -> None:
    """Return once `url` answers 200 (at once when url is None).

    Raises HealthTimeout after `timeout_s`; returns early (without raising) when the child
    exits, leaving the caller to read `exited`.
    """
    if url is None:
        return
    started = time.monotonic()
    deadline = started + timeout_s
    interval = _FAST_INTERVAL_S
    address = _loopback_address(url)
    while not exited.done():
        if address is not None and await _refused(address):
            pass  # not listening yet: no HTTP request to make
        elif await _probe(session, url):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            msg = f"no HTTP 200 from {url} within {timeout_s:g}s"
            raise HealthTimeout(msg)
        # Sleep, but wake at once if the child dies meanwhile.
        await asyncio.wait([exited], timeout=min(interval, remaining))
        if time.monotonic() - started > _FAST_PHASE_S:
            interval = min(interval * _BACKOFF, _MAX_INTERVAL_S)
            address = None  # from here on every poll asks over HTTP (see _refused)


def _loopback_address(url: str) -> tuple[str, int] | None:
    """(IPv4 loopback address, port) when `url` names a server on this machine by 127.0.0.1 or
    localhost (llama-swap's default proxy URL), else None: then every poll is an HTTP probe."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return ("127.0.0.1", port or 80)


async def _refused(address: tuple[str, int]) -> bool:
    """True when nothing listens at `address` yet (the connect was refused).

    Anything else, a successful connect included, is False: the HTTP probe decides. A server
    listening only on ::1 (`localhost`) is refused here on every poll, so once the fast phase
    ends wait_healthy stops using this check and polls over HTTP only.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, address)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        sock.close()
    return False


async def probe_reachable(session: aiohttp.ClientSession, url: str) -> bool:
    """One health probe of a server swapgate does not run (an external model): 200 or not,
    within the probe's own timeout, so a request never waits long on a server that is down."""
    return await _probe(session, url)


async def _probe(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=_PROBE_TIMEOUT_S)
        ) as response:
            await response.read()
            return response.status == HTTPStatus.OK
    except (aiohttp.ClientError, TimeoutError):
        return False
