"""The warden program and its link: guarded groups die when swapgate's end goes away."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from swapgate.proxy.lifecycle import warden
from swapgate.proxy.lifecycle.child import group_has_live_members
from swapgate.proxy.lifecycle.wardenlink import WardenLink
from tests.support.procs import wait_until, wait_until_async
from tests.support.specs import run

# A group of three: the shell leader, a sleeping grandchild, and one that ignores SIGTERM.
FAMILY = "sleep 60 & (trap '' TERM; sleep 60) & wait"


def _family() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", FAMILY], start_new_session=True)


def _gone(pgid: int) -> bool:
    return not group_has_live_members(pgid)


def _ignores_sigterm(pid: int) -> bool:
    """The process has installed its SIG_IGN for SIGTERM (it is past its start-up)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_eof_on_the_socket_kills_every_guarded_group_and_only_those() -> None:
    guarded, spared = _family(), _family()
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", warden.__file__, str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
    )
    theirs.close()
    try:
        ours.sendall(f"+{guarded.pid}\n+{spared.pid}\n-{spared.pid}\n+junk\n".encode())
        wait_until(lambda: _ignores_sigterm(proc.pid), timeout=5, message="warden started")
        proc.send_signal(signal.SIGTERM)  # ignored: only EOF ends the watch
        ours.close()  # what swapgate's death does
        assert proc.wait(5) == 0
        wait_until(lambda: _gone(guarded.pid), timeout=2, message="the guarded group gone")
        assert group_has_live_members(spared.pid)
    finally:
        for child in (guarded, spared):
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def test_a_killed_warden_is_started_again_and_told_every_group() -> None:
    async def scenario() -> tuple[int, int]:
        link = WardenLink()
        family = _family()
        try:
            link.guard(family.pid)
            first = link.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            # The pidfd watch starts it again and resends the group.
            second = await wait_until_async(lambda: link.pid not in (None, first) and link.pid)
            assert isinstance(second, int)
            await wait_until_async(lambda: _ignores_sigterm(second), message="warden started")
            assert group_has_live_members(family.pid)
            link.close(wait_s=2)  # what swapgate's death does to the socket
            await wait_until_async(lambda: _gone(family.pid), timeout=2, message="group gone")
            return first, second
        finally:
            family.wait(5)

    first, second = run(scenario())
    assert first != second
