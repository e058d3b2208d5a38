"""Who holds a port: the LISTEN sockets on a TCP port and whether a process group owns one.

Lets "ready" mean that our child answered, not a foreign server that bound the port first.
Linux /proc only, stdlib only; imports only procfs.py from the project.
"""

from __future__ import annotations

import os
from pathlib import Path

from swapgate.proxy.lifecycle.procfs import group_members

_TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_LISTEN = "0A"  # the `st` column of /proc/net/tcp: TCP_LISTEN


def listener_inodes(port: int) -> set[int]:
    """Socket inodes of the TCP sockets in LISTEN state on `port`, IPv4 and IPv6.

    A table that does not exist (no IPv6) is skipped; raises OSError when none can be read.
    """
    found: set[int] = set()
    read_any = False
    for table in _TCP_TABLES:
        try:
            text = table.read_text()
        except FileNotFoundError:
            continue
        read_any = True
        for line in text.splitlines()[1:]:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == _LISTEN and int(local.rpartition(":")[2], 16) == port and inode:
                found.add(inode)
    if not read_any:
        msg = "no TCP socket table under /proc/net"
        raise FileNotFoundError(msg)
    return found


def group_socket_inodes(pgid: int) -> set[int]:
    """Inodes of the sockets open in any process of group `pgid`.

    Pids that vanish or whose descriptors cannot be read are skipped; OSError if /proc cannot.
    """
    return _group_sockets(pgid)[0]


def listener_owned_by_group(port: int, pgid: int) -> bool | None:
    """Whether the listener on `port` belongs to process group `pgid`.

    True if some listener on the port is open in a process of the group; False if there are
    listeners and none is; None when it cannot be told (no listener visible in /proc, /proc
    unreadable, a process of the group whose descriptors we may not read): accept then.
    """
    try:
        listeners = listener_inodes(port)
    except OSError:
        return None
    if not listeners:
        return None
    try:
        owned, complete = _group_sockets(pgid)
    except OSError:
        return None
    if listeners & owned:
        return True
    return False if complete else None


def _group_sockets(pgid: int) -> tuple[set[int], bool]:
    """(socket inodes of group `pgid`, whether every process of the group could be read)."""
    inodes: set[int] = set()
    complete = True
    for pid in group_members(pgid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:  # exited meanwhile: it holds nothing now
            continue
        except OSError:  # another user's process (or hidepid): it may hold the listener
            complete = False
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:  # closed or exited between listdir and readlink
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes, complete
