"""swapgate's end of the warden (warden.py): started on first use, told every group to guard.

One per process (`WARDEN`): every ChildProcess, model server or cmdStop, asks it to guard its
group right after the spawn and lets go once the group is gone. If the warden itself dies
(someone killed it), it is started again at once and told every group still guarded, and the
event is logged. Stdlib only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys

from swapgate.proxy.lifecycle import warden

log = logging.getLogger("swapgate.child")

# -I -S: no site-packages scan and no environment-driven start-up, for the fastest start.
_WARDEN = (sys.executable, "-I", "-S", warden.__file__)


class WardenLink:
    """The warden process and the socket swapgate keeps open to it while it lives."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._groups: set[int] = set()

    @property
    def pid(self) -> int | None:
        """The warden's pid while it runs (None before the first guard)."""
        return None if self._popen is None else self._popen.pid

    def guard(self, pgid: int) -> None:
        """Have the warden SIGKILL group `pgid` if swapgate dies before `release(pgid)`."""
        self._groups.add(pgid)
        if self._sock is None:
            self._start()  # sends every guarded group, this one included
        else:
            self._send(f"+{pgid}\n")

    def release(self, pgid: int) -> None:
        """Group `pgid` is gone (or was never started): stop guarding it."""
        if pgid in self._groups:
            self._groups.discard(pgid)
            self._send(f"-{pgid}\n")

    def close(self, wait_s: float = 0.0) -> None:
        """Close swapgate's end: the warden kills every group still guarded and exits (waited
        for up to `wait_s`). Only swapgate's death does this in production; a test process
        does it by hand before it exits."""
        popen = self._popen
        if self._sock is not None:
            self._sock.close()
        self._sock = self._popen = None  # its exit is expected now: not started again
        if popen is not None and wait_s > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(wait_s)

    def _send(self, text: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.send(text.encode())
        except BlockingIOError:  # pragma: no cover - a warden that stopped reading
            log.warning("the warden is not reading; %r not sent", text.strip())
        except OSError:  # it died: the exit watch restarts it and resends every group
            pass

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            popen = subprocess.Popen(  # noqa: S603 - our own warden.py, this interpreter
                [*_WARDEN, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # Its own session: a terminal's Ctrl-C must not reach it before swapgate.
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock, self._popen = ours, popen
        self._send("".join(f"+{pgid}\n" for pgid in sorted(self._groups)))
        self._watch(popen)

    def _watch(self, popen: subprocess.Popen[bytes]) -> None:
        """Notice the warden's exit through a pidfd, and start it again."""
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(popen.pid)

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            code = popen.wait()
            if self._popen is not popen:
                return
            log.warning("the warden (pid %d) exited with %d; starting it again", popen.pid, code)
            if self._sock is not None:
                self._sock.close()
            self._sock = self._popen = None
            self._start()

        loop.add_reader(pidfd, on_exit)


WARDEN = WardenLink()
