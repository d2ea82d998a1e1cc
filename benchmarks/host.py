"""What the scale benchmark reads directly from the host and the engine, and its statistics.

Nothing here goes through the hub: these are the figures the hub's own view is checked against.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
from pathlib import Path

import requests

from tests.support.hub import HubProcess

GIB = 1024**3

# --- the host and the engine, read directly -----------------------------------------


def mem_available() -> int:
    """The host's MemAvailable in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemAvailable line")


def lab_containers(prefix: str) -> dict[str, str]:
    """Running lab containers of ``prefix``: name -> full id (pool and folder helpers left out)."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "--no-trunc",
            "--filter",
            f"name={prefix}",
            "--format",
            "{{.Names}}\t{{.ID}}",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = {}
    for line in out.splitlines():
        name, _, cid = line.partition("\t")
        if name.startswith(prefix) and "-pool-" not in name and "_folder-" not in name:
            found[name] = cid
    return found


def started_at(ids: list[str]) -> dict[str, str]:
    """Container id -> its StartedAt: a restarted or replaced container has another."""
    if not ids:
        return {}
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}} {{.State.StartedAt}}", *ids],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def _cgroup_dir(cid: str) -> Path | None:
    for candidate in (
        f"/sys/fs/cgroup/memory/docker/{cid}",  # v1, cgroupfs driver
        f"/sys/fs/cgroup/memory/system.slice/docker-{cid}.scope",  # v1, systemd driver
        f"/sys/fs/cgroup/system.slice/docker-{cid}.scope",  # v2, systemd driver
        f"/sys/fs/cgroup/docker/{cid}",  # v2, cgroupfs driver
    ):
        if os.path.isdir(candidate):
            return Path(candidate)
    return None


def cgroup_memory(cid: str) -> dict[str, int] | None:
    """A container's memory from its cgroup, in bytes: all it is charged, and that less page cache.

    ``working_set`` is usage less inactive file pages, the figure ``docker stats`` shows;
    ``anon`` is memory that is the processes' own (no file behind it). None when unreadable.
    """
    path = _cgroup_dir(cid)
    if path is None:
        return None
    try:
        if (path / "memory.current").exists():  # cgroup v2
            usage = int((path / "memory.current").read_text())
            stat = _stat(path / "memory.stat")
            inactive, anon = stat.get("inactive_file", 0), stat.get("anon", 0)
        else:
            usage = int((path / "memory.usage_in_bytes").read_text())
            stat = _stat(path / "memory.stat")
            inactive = stat.get("total_inactive_file", 0)
            anon = stat.get("total_rss", 0)
    except (OSError, ValueError):
        return None
    return {"usage": usage, "working_set": max(0, usage - inactive), "anon": anon}


def _stat(path: Path) -> dict[str, int]:
    pairs = (line.split() for line in path.read_text().splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2}


def load_average() -> list[float]:
    """The host's 1, 5 and 15 minute load averages: how busy the machine was besides this run."""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def proxy_pid(hub: HubProcess) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((hub.workdir / "proxy.pid").read_text().strip())
    return None


def proxy_routes(hub: HubProcess) -> dict[str, int]:
    """The proxy's routing table: all routes, and those to users' servers."""
    r = requests.get(
        f"http://127.0.0.1:{hub.proxy_api_port}/api/routes",
        headers={"Authorization": f"token {hub.proxy_token}"},
        timeout=30,
    )
    r.raise_for_status()
    routes = r.json()
    return {"all": len(routes), "users": sum(1 for spec in routes if spec.startswith("/user/"))}


# --- statistics ---------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by the nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "total": sum(values),
    }


# --- cleanup --------------------------------------------------------------------------


def cleanup(prefix: str) -> int:
    """Remove every container of ``prefix`` (labs, folder helpers); return how many."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name={prefix}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for start in range(0, len(ids), 50):
        subprocess.run(["docker", "rm", "-f", *ids[start : start + 50]], capture_output=True)
    return len(ids)


def pythonpath() -> str:
    """PYTHONPATH with this checkout first."""
    root = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def network_exists(name: str) -> bool:
    return (
        subprocess.run(["docker", "network", "inspect", name], capture_output=True).returncode == 0
    )
