"""One child process: spawn in its own process group, capture its output, stop it for sure.

The child dies with swapgate even on SIGKILL (PR_SET_PDEATHSIG), and `terminate()` always ends
with the whole group gone: cmdStop or SIGTERM, a grace period, then SIGKILL. Imports no aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger("swapgate.child")

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
_GROUP_GONE_WAIT_S = 2.0


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL me when swapgate's thread dies.

    Spawning always happens on the event-loop (main) thread, which lives as long as swapgate.
    """
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def split_command(text: str) -> list[str]:
    """A command line as argv: comment lines dropped, split as a POSIX shell would (no shell)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = " ".join(line.rstrip().removesuffix("\\") for line in lines)
    return shlex.split(joined)


class _OutputProtocol(asyncio.Protocol):
    """Splits the child's merged stdout/stderr into lines for `on_line`."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._partial = b""
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            self._on_line(raw.rstrip(b"\r").decode("utf-8", "replace"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._partial:
            self._on_line(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        if not self.closed.done():
            self.closed.set_result(None)


class ChildProcess:
    """A running (or exited) child and its process group."""

    def __init__(self, popen: subprocess.Popen[bytes], protocol: _OutputProtocol) -> None:
        self._popen = popen
        self._protocol = protocol
        self.pid = popen.pid
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._watch_exit()

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], env: Mapping[str, str], on_line: Callable[[str], None]
    ) -> ChildProcess:
        """Start `argv` with `env` added to swapgate's environment. Raises OSError (bad path)."""
        # A plain Popen (fork+exec takes about a millisecond) because it takes preexec_fn,
        # which the death signal needs, and exit is watched through a pidfd below.
        popen = subprocess.Popen(  # noqa: ASYNC220
            list(argv),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: signals reach the whole tree
            preexec_fn=_die_with_parent,
        )
        assert popen.stdout is not None  # noqa: S101 - stdout=PIPE above guarantees it
        loop = asyncio.get_running_loop()
        protocol = _OutputProtocol(on_line)
        try:
            await loop.connect_read_pipe(lambda: protocol, popen.stdout)
            return cls(popen, protocol)
        except BaseException:
            # Cancelled (an unload during startup) before anyone holds the child: kill it
            # here, or it would run on unowned.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
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
            if not self.exited.done():
                self.exited.set_result(code)

        loop.add_reader(pidfd, on_exit)

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

    async def terminate(self, grace_s: float, stop_argv: Sequence[str] | None = None) -> int:
        """Stop the child for sure and return its exit code.

        Shielded: a cancelled caller (client gone, shutdown) must not leave a half-stopped
        child, so the work runs to the end in its own task.
        """
        return await asyncio.shield(self._terminate(grace_s, stop_argv))

    async def _terminate(self, grace_s: float, stop_argv: Sequence[str] | None) -> int:
        if not self.exited.done():
            if stop_argv:
                await _run_stop_command(stop_argv, grace_s)
            else:
                self.signal_group(signal.SIGTERM)
            if await self.wait(grace_s) is None:
                log.warning("pid %d did not stop within %.1fs; sending SIGKILL", self.pid, grace_s)
        # The leader may be gone while grandchildren linger in the group: kill them all, and
        # return only once the group is empty (bounded), so "stopped" means stopped.
        self.signal_group(signal.SIGKILL)
        code = await self.exited
        await self._wait_group_gone(_GROUP_GONE_WAIT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._protocol.closed, 1.0)
        return code

    async def _wait_group_gone(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            await asyncio.sleep(0.01)

    def kill_now(self) -> None:
        """Synchronous last resort for exit paths that cannot await (atexit)."""
        self.signal_group(signal.SIGKILL)


async def _run_stop_command(argv: Sequence[str], timeout_s: float) -> None:
    """Run a cmdStop command (e.g. `docker stop`) and wait for it, bounded."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        log.warning("cmdStop %s failed to start: %s", argv[0], exc)
        return
    try:
        await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
