"""The warden: one small process that kills every model's process group when swapgate dies.

Each model server runs in a process group of its own, led by the server (pgid = its pid).
PR_SET_PDEATHSIG would kill only the direct child when swapgate dies: a wrapper's server
(`sh -c '...'`), a grandchild or a daemon left in the group would live on (and setting it
needs a preexec_fn, which forces a full fork of swapgate per start). So swapgate starts this
program once, at start-up, as `python -I -S warden.py FD`, in a session of its
own, and tells it over the socket FD which groups to guard: `+PGID` after a spawn, `-PGID`
once the group is gone. swapgate never closes its end while it runs; EOF on FD means it has
died, however (SIGKILL included), and the warden SIGKILLs every group it guards and exits.

One warden for all models, started before the first model: a start costs one write on the
socket, not a process start of its own (a Python start is 10-20 ms, a third of a swap).
SIGINT, SIGTERM and SIGHUP are ignored: a terminal's Ctrl-C or a service manager's stop
reaches swapgate, which decides what to stop and when; then it lets go of the warden.

Stdlib only and nothing beyond `os` and `signal` (no project imports: `-S` leaves
site-packages off the path).
"""

from __future__ import annotations

import os
import signal
import sys


def _kill(groups: set[int]) -> None:
    for pgid in groups:
        try:  # noqa: SIM105 - contextlib would add to the warden's start time
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # that group is already gone


def _apply(line: bytes, groups: set[int]) -> None:
    """One instruction: `+PGID` guards a group, `-PGID` lets it go."""
    if len(line) < 2 or not line[1:].isdigit():
        return
    pgid = int(line[1:])
    if line[:1] == b"+":
        groups.add(pgid)
    elif line[:1] == b"-":
        groups.discard(pgid)


def main(argv: list[str]) -> int:
    """Guard the groups named on socket `argv[1]` until it reaches EOF, then kill them."""
    link = int(argv[1])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    pending = b""
    while True:
        try:
            data = os.read(link, 4096)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue
        except OSError:
            data = b""
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            _apply(line, groups)
    _kill(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
