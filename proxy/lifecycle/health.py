"""Readiness probe: poll a server's health endpoint until 200, racing the child's exit.

Polls every 10 ms for the first two seconds (most small servers are healthy by then, and a
late poll is added straight to the user's wait), then back off gently to 100 ms for servers
that load for minutes. The only aiohttp user in lifecycle/.
"""

from __future__ import annotations

import asyncio
import time
from http import HTTPStatus

import aiohttp

_FAST_INTERVAL_S = 0.01
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
    while not exited.done():
        if await _probe(session, url):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            msg = f"no HTTP 200 from {url} within {timeout_s:g}s"
            raise HealthTimeout(msg)
        # Sleep, but wake at once if the child dies meanwhile.
        await asyncio.wait([exited], timeout=min(interval, remaining))
        if time.monotonic() - started > _FAST_PHASE_S:
            interval = min(interval * _BACKOFF, _MAX_INTERVAL_S)


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
