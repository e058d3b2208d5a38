"""Shared pytest setup: Hypothesis profiles and a guard that fails tests leaking children."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from swapgate.proxy.lifecycle.wardenlink import WARDEN
from tests.support.procs import pids_alive, wait_until

settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Every process this test run starts inherits this tag, even one orphaned from its parent, so
# the guard below sees this run's leaks and never another run's processes.
_TAG_NAME = "SWAPGATE_TEST_RUN"
os.environ[_TAG_NAME] = str(os.getpid())
_TAG = f"{_TAG_NAME}={os.getpid()}".encode() + b"\0"


def _watched_pids() -> set[int]:
    """PIDs of live processes started by this test run (from /proc/PID/environ)."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        # This process's warden guards its children for as long as the process lives.
        if not entry.isdigit() or int(entry) in (os.getpid(), WARDEN.pid):
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if _TAG in environ:
            found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def _no_leaked_children() -> Iterator[None]:
    """Every test must leave no process it started running behind."""
    before = _watched_pids()
    yield

    def leaked() -> list[int]:
        return pids_alive(sorted(_watched_pids() - before))

    try:
        wait_until(lambda: not leaked(), timeout=5.0, message="spawned processes to exit")
    except TimeoutError:
        pytest.fail(f"test left processes running: {leaked()}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Let this process's warden go (it exits at once, nothing left to guard)."""
    WARDEN.close(wait_s=2.0)
