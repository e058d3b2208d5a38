"""Shared pytest setup: Hypothesis profiles and a guard that fails tests leaking children."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.procs import pids_alive, wait_until

settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

_WATCHED = (b"bench.fake_upstream", b"llama-server", b"proxy.cli", b"bin/swapgate")


def _watched_pids() -> set[int]:
    """PIDs of fake upstreams, llama-servers and swapgates on this machine (from /proc)."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if any(marker in cmdline for marker in _WATCHED):
            found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def _no_leaked_children() -> Iterator[None]:
    """Every test must leave no fake upstream, llama-server or swapgate running behind."""
    before = _watched_pids()
    yield

    def leaked() -> list[int]:
        return pids_alive(sorted(_watched_pids() - before))

    try:
        wait_until(lambda: not leaked(), timeout=5.0, message="spawned processes to exit")
    except TimeoutError:
        pytest.fail(f"test left processes running: {leaked()}")
