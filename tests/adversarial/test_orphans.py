"""No model process outlives swapgate, whatever signal ends it and however the command is built.

Each model's command leads its own process group, guarded by the warden: wrappers (`sh -c`), a
shell that stays alive, grandchildren (one of them orphaned, so no longer anyone's child but
still in the group) and a server ignoring SIGTERM must all be gone soon after swapgate is.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import time
from collections.abc import Iterator

import pytest

from swapgate.proxy.lifecycle.procfs import group_members
from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import wait_until

pytestmark = pytest.mark.integration

UNLOAD_S = 1
# The documented bound after SIGTERM/SIGINT with nothing in flight: the drain ends at once,
# then unloadTimeout for the server that ignores SIGTERM, then ~1 s for SIGKILL to settle.
GRACEFUL_BOUND_S = UNLOAD_S + 3
KILL_BOUND_S = 2.0


def _commands() -> dict[str, str]:
    def sh(script: str) -> str:
        return f"sh -c {shlex.quote(script)}"

    return {
        "exec-wrapper": sh("exec " + fake_cmd("exec-wrapper")),
        "shell-stays": sh(fake_cmd("shell-stays") + "; true"),
        # A plain grandchild, and one orphaned by its subshell (daemon style) in the group.
        "grandchildren": sh("sleep 300 & (sleep 300 &); exec " + fake_cmd("grandchildren")),
        "ignores-sigterm": fake_cmd("ignores-sigterm", ignore_sigterm=True),
    }


def config() -> str:
    models = "".join(
        f"  {name}:\n    cmd: {json.dumps(cmd)}\n" for name, cmd in _commands().items()
    )
    members = ", ".join(_commands())
    return (
        f"shutdownTimeout: 2\nunloadTimeout: {UNLOAD_S}\n"
        f"groups:\n  all:\n    swap: false\n    members: [{members}]\n"
        f"models:\n{models}"
    )


@contextlib.contextmanager
def all_models_running() -> Iterator[tuple[Swapgate, dict[str, list[int]]]]:
    """swapgate with every model started, and each model's process group as {pgid: members};
    whatever is left of those groups is SIGKILLed at the end."""
    groups: dict[str, list[int]] = {}
    try:
        with start_swapgate(config()) as gate:
            for model in _commands():
                assert gate.chat(model)[0] == 200, gate.output()
                pid = gate.running()[model]["pid"]
                assert os.getpgid(pid) == pid  # the reported pid leads the model's group
                groups[str(pid)] = [pid]
            grandchildren = gate.running()["grandchildren"]["pid"]
            wait_until(
                lambda: len(group_members(grandchildren)) >= 3,
                timeout=5,
                message="the grandchildren in their group",
            )
            for pgid in groups:
                groups[pgid] = group_members(int(pgid))
            yield gate, groups
    finally:
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pgid), signal.SIGKILL)


def left_running(groups: dict[str, list[int]]) -> dict[str, list[int]]:
    """Every group that still has a live member (zombies count as gone)."""
    return {pgid: alive for pgid in groups if (alive := group_members(int(pgid)))}


def assert_all_gone_by(groups: dict[str, list[int]], deadline: float) -> None:
    while left_running(groups) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert left_running(groups) == {}, f"still running after the bound: {groups}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_signal_stops_every_process_of_every_group(sig: signal.Signals) -> None:
    """SIGTERM or SIGINT: swapgate exits 0 and every group is empty within the documented
    bound (unloadTimeout for the server ignoring SIGTERM, plus the settle time)."""
    with all_models_running() as (gate, groups):
        signalled = time.monotonic()
        gate.proc.send_signal(sig)
        assert gate.proc.wait(GRACEFUL_BOUND_S + 5) == 0, gate.output()
        assert_all_gone_by(groups, signalled + GRACEFUL_BOUND_S)


def test_sigkill_of_swapgate_takes_every_group_within_two_seconds() -> None:
    """SIGKILL runs no cleanup in swapgate, yet the warden sees its socket close and SIGKILLs
    every group: wrappers, grandchildren, the SIGTERM-ignoring server."""
    with all_models_running() as (gate, groups):
        signalled = time.monotonic()
        gate.proc.send_signal(signal.SIGKILL)
        gate.proc.wait(5)
        assert_all_gone_by(groups, signalled + KILL_BOUND_S)


def test_sighup_keeps_swapgate_and_the_children_then_sigterm_stops_them() -> None:
    """SIGHUP reloads an unchanged config: swapgate serves on with the same processes; a
    SIGTERM after it still empties every group within the bound."""
    with all_models_running() as (gate, groups):
        gate.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "SIGHUP" in gate.output(), timeout=5, message="SIGHUP logged")
        assert gate.proc.poll() is None
        assert {pgid: group_members(int(pgid)) for pgid in groups} == groups
        assert gate.chat("ignores-sigterm")[0] == 200
        signalled = time.monotonic()
        gate.proc.send_signal(signal.SIGTERM)
        assert gate.proc.wait(GRACEFUL_BOUND_S + 5) == 0, gate.output()
        assert_all_gone_by(groups, signalled + GRACEFUL_BOUND_S)
