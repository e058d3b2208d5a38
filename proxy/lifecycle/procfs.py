"""Who is in a process group, from Linux /proc. Stdlib only; imports nothing of the project."""

from __future__ import annotations

import os


def group_members(pgid: int) -> list[int]:
    """Every live pid whose process group is `pgid`, ascending; zombies (exited, unreaped) are
    left out, and pids that vanish or cannot be read while scanning are skipped."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    wanted = str(pgid).encode()
    pids = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited between listdir and open, or not ours to read
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and ")", so split after
        # the last ")"; pgrp is field 5, the third after it.
        fields = stat[stat.rfind(b")") + 1 :].split()
        if len(fields) > 2 and fields[2] == wanted and fields[0] not in (b"Z", b"X"):
            pids.append(int(name))
    return sorted(pids)
