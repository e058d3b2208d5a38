"""One child process: spawn it leading its own process group, capture its output, stop it
for sure.

Nothing of a child outlives swapgate, SIGKILL included: its whole group (the command, a
wrapper's server, grandchildren, daemons that stay in the group) is guarded by the warden
(warden.py, wardenlink.py) from the spawn until the group is gone. `pid` is the command's own pid, which is also the group id. `terminate()`
always ends with the whole group gone within its bound: cmdStop or SIGTERM and the wait for
the group share one grace period, then SIGKILL. A child that ends on its own takes its group
with it. Stdlib only (plus procfs.py); no aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence

from swapgate.proxy.lifecycle.child_output import OutputProtocol
from swapgate.proxy.lifecycle.procfs import group_members
from swapgate.proxy.lifecycle.wardenlink import WARDEN

log = logging.getLogger("swapgate.child")

# After the SIGKILL: how long the group may take to empty and the output pipe to close. It is
# the "~1 s" that terminate() may run past its grace period (all of it, cmdStop included).
_SETTLE_S = 1.0
_GROUP_POLL_S = 0.01
_GRACE_POLL_S = 0.05  # while a group shuts down gracefully: a /proc scan per poll


def split_command(text: str) -> list[str]:
    """A command line as argv: comment lines dropped, split as a POSIX shell would (no shell)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = " ".join(line.rstrip().removesuffix("\\") for line in lines)
    return shlex.split(joined)


def group_has_live_members(pgid: int) -> bool:
    """True while some process of group `pgid` is alive; zombies (exited, unreaped) are gone.

    `killpg(pgid, 0)` is not enough: it succeeds while a zombie is still in the group, and
    zombies linger wherever nobody reaps them (swapgate as PID 1 or as a subreaper).
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False  # the cheap answer: nothing at all is left in the group
    return bool(group_members(pgid))


class ChildProcess:
    """A running (or exited) child and its process group."""

    def __init__(self, popen: subprocess.Popen[bytes], protocol: OutputProtocol) -> None:
        self._popen = popen
        self._protocol = protocol
        self.pid = popen.pid
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # The one teardown of this child: kept here so the loop cannot drop the shielded task,
        # and so a second terminate() joins the first instead of starting another.
        self._teardown: asyncio.Task[int] | None = None
        self._watch_exit()

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], env: Mapping[str, str], on_line: Callable[[str], None]
    ) -> ChildProcess:
        """Start `argv` with `env` added to swapgate's environment; output lines go to `on_line`.

        Raises `ValueError` for an argv or env that cannot be passed to exec (empty argv, an
        embedded NUL byte, `=` in a variable name) and `OSError` when it cannot run (missing
        program, no permission, out of file descriptors). Either way nothing is left behind:
        no process and no open descriptor.
        """
        if not argv:
            msg = "cannot run an empty command"
            raise ValueError(msg)
        # A plain Popen, with no preexec_fn so it can vfork (a fork of swapgate's whole
        # address space took ~6 ms of the event loop per start); exit is watched through a
        # pidfd below. Popen itself closes its pipes when it raises (ValueError before fork,
        # OSError from exec).
        popen = subprocess.Popen(  # noqa: ASYNC220
            list(argv),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: signals reach the whole tree
        )
        assert popen.stdout is not None  # noqa: S101 - stdout=PIPE above guarantees it
        loop = asyncio.get_running_loop()
        protocol = OutputProtocol(on_line)
        transport: asyncio.BaseTransport | None = None
        try:
            WARDEN.guard(popen.pid)  # from here its group dies with swapgate, however it dies
            transport, _ = await loop.connect_read_pipe(lambda: protocol, popen.stdout)
            return cls(popen, protocol)  # pidfd_open may fail (EMFILE): handled below
        except BaseException:
            # Cancelled (an unload during startup) or out of descriptors before anyone holds
            # the child: kill it here, or it would run on unowned.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            if transport is None:
                popen.stdout.close()
            else:
                transport.close()
            popen.wait()
            WARDEN.release(popen.pid)
            raise

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    def _watch_exit(self) -> None:
        """Resolve `exited` the moment the process ends, via a pidfd (no polling, no SIGCHLD)."""
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(self.pid)

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            code = self._popen.wait()
            if self._teardown is None:
                # Ended on its own: whatever it left in its group is an orphan (holding a port
                # or GPU memory) that must not outlive it. A later terminate() joins this.
                self._teardown = asyncio.ensure_future(self._kill_group(loop.time() + _SETTLE_S))
            if not self.exited.done():
                self.exited.set_result(code)

        try:
            loop.add_reader(pidfd, on_exit)
        except BaseException:
            os.close(pidfd)
            raise

    async def wait(self, within_s: float | None = None) -> int | None:
        """The exit code, or None if still running after `within_s` seconds."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), within_s)
        except TimeoutError:
            return None

    def signal_group(self, sig: signal.Signals) -> None:
        """Send `sig` to the child's whole process group (ignored if already gone)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def terminate(
        self,
        grace_s: float,
        stop_argv: Sequence[str] | None = None,
        stop_env: Mapping[str, str] | None = None,
    ) -> int:
        """Stop the child for sure and return its exit code, within about `grace_s` + 1 s.

        With `stop_argv` (cmdStop) that command runs, with `stop_env` added to swapgate's
        environment and its output going to the child's `on_line`; otherwise the group gets
        SIGTERM. `grace_s` bounds the command and the wait for the child together; then the
        command's group and the child's group are SIGKILLed. Only a process the kernel cannot
        kill (stuck in uninterruptible sleep) can hold the return up past that bound.

        Shielded: a cancelled caller (client gone, shutdown) must not leave a half-stopped
        child, so the work runs to the end in its own task. A second call joins the first.
        """
        if self._teardown is None:
            self._teardown = asyncio.ensure_future(
                self._terminate(grace_s, stop_argv, stop_env or {})
            )
        return await asyncio.shield(self._teardown)

    async def _terminate(
        self, grace_s: float, stop_argv: Sequence[str] | None, stop_env: Mapping[str, str]
    ) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        if not self.exited.done():
            group_told = not stop_argv or not await self._run_stop_command(
                stop_argv, stop_env, deadline
            )
            if group_told:
                self.signal_group(signal.SIGTERM)
            if await self.wait(max(0.0, deadline - loop.time())) is None:
                log.warning("pid %d did not stop within %.1fs; sending SIGKILL", self.pid, grace_s)
            elif group_told:
                # A wrapper (`sh -c`) may end at once while the server it started, which got
                # the SIGTERM too, is still shutting down: the grace is for the whole group.
                await _wait_group_gone(self.pid, deadline, _GRACE_POLL_S)
        return await self._kill_group(deadline + _SETTLE_S)

    async def _run_stop_command(
        self, argv: Sequence[str], env: Mapping[str, str], deadline: float
    ) -> bool:
        """Run cmdStop (e.g. `docker stop`) until it exits or `deadline`, then kill its group;
        False if it could not start (the caller sends SIGTERM instead)."""
        loop = asyncio.get_running_loop()
        try:
            stop = await ChildProcess.spawn(argv, env, self._protocol.lines.on_line)
        except (OSError, ValueError) as exc:
            log.warning("cmdStop %r failed to start: %s; sending SIGTERM", argv[0], exc)
            return False
        code = await stop.wait(max(0.0, deadline - loop.time()))
        if code is None:
            log.warning("cmdStop %r still running at the unload timeout; killing it", argv[0])
        elif code != 0:
            log.warning("cmdStop %r exited with code %d", argv[0], code)
        # Always: whatever it left running in its group must not outlive the stop. The child
        # gets the rest of the settle time, so the two together stay within one bound.
        await stop._kill_group(deadline + _SETTLE_S / 2)
        return True

    async def _kill_group(self, settle_by: float) -> int:
        """SIGKILL the whole group, then wait for the exit code, the group and the pipe."""
        # The leader may be gone while grandchildren linger in the group: kill them all, and
        # return only once the group is empty (bounded), so "stopped" means stopped.
        self.signal_group(signal.SIGKILL)
        code = await self.exited
        loop = asyncio.get_running_loop()
        await _wait_group_gone(self.pid, settle_by, _GROUP_POLL_S, warn=True)
        WARDEN.release(self.pid)
        with contextlib.suppress(TimeoutError):
            # Shielded: a timeout must not cancel `closed` itself.
            left = max(0.0, settle_by - loop.time())
            await asyncio.wait_for(asyncio.shield(self._protocol.closed), left)
        return code

    def kill_now(self) -> None:
        """Synchronous last resort for exit paths that cannot await (atexit)."""
        self.signal_group(signal.SIGKILL)


async def _wait_group_gone(pgid: int, until: float, poll_s: float, *, warn: bool = False) -> None:
    """Poll until group `pgid` has no live member or the loop clock reaches `until`."""
    loop = asyncio.get_running_loop()
    while group_has_live_members(pgid):
        if loop.time() >= until:
            if warn:
                log.warning("process group %d still has live members after SIGKILL", pgid)
            return
        await asyncio.sleep(poll_s)
