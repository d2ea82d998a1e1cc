"""Which TCP ports a container's processes listen on, read from the host's ``/proc``.

The hub checks that a host-network lab's port is held by the lab's own processes
before it connects (:meth:`labhub.spawner.lifecycle.LabSpawnerMixin.verify_host_listener`).
Asking inside the container costs a ``docker exec`` and a Python start (70-90 ms
measured here, on every spawn); a hub that runs as root in the engine's PID
namespace can read the same facts from ``/proc`` in a few milliseconds. Anything
short of that (another PID namespace, no root, a container gone) raises
:class:`Unknown` and the hub asks inside the container as before: this is a
shortcut, never a second opinion.
"""

from __future__ import annotations

import contextlib
import os

#: TCP state LISTEN in /proc/net/tcp.
_LISTEN = "0A"


class Unknown(Exception):
    """The host's /proc cannot answer for this container; ask inside it instead."""


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def container_pids(container_id: str, proc: str = "/proc") -> list[int]:
    """PIDs (as the host sees them) of every process in the container ``container_id``.

    A process belongs to the container when its cgroup path names the container's
    full id: true with the cgroupfs and systemd drivers, cgroup v1 and v2.
    """
    if len(container_id) != 64:
        raise Unknown("only a full container id names its cgroup")
    pids = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            if container_id in _read(f"{proc}/{entry}/cgroup"):
                pids.append(int(entry))
        except OSError:
            continue  # exited while we looked
    if not pids:
        # another PID namespace (a hub in a container) sees none of the lab's processes
        raise Unknown("no process of the container is visible here")
    return pids


def socket_inodes(pids: list[int], proc: str = "/proc") -> set[str]:
    """Inodes of the sockets the processes ``pids`` hold open."""
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"{proc}/{pid}/fd")
        except PermissionError:
            raise Unknown("the hub may not read the lab's open files (not root)") from None
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{proc}/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return inodes


def listening_ports(table: str, inodes: set[str]) -> set[int]:
    """Ports in a ``/proc/net/tcp`` (or ``tcp6``) ``table`` listened on by a socket in ``inodes``."""
    ports = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in inodes:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def container_listeners(container_id: str, proc: str = "/proc") -> set[int]:
    """The TCP ports the container's own processes listen on; :class:`Unknown` if /proc cannot tell."""
    pids = container_pids(container_id, proc)
    inodes = socket_inodes(pids, proc)
    for pid in pids:
        try:
            # the tables of the container's network namespace: the host's, on host networking
            tables = [_read(f"{proc}/{pid}/net/tcp")]
        except OSError:
            continue  # that process exited: any other shows the same namespace
        with contextlib.suppress(OSError):  # no IPv6 on this host
            tables.append(_read(f"{proc}/{pid}/net/tcp6"))
        return set().union(*(listening_ports(table, inodes) for table in tables))
    raise Unknown("the container's processes exited while the hub looked")
