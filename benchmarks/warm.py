"""The warm pool seen from outside the hub: is there one, is it full, what its containers use.

The interface relied on: ``c.LabDockerSpawner.warm_pool_size = N``; free pool
containers are named ``{prefix}--pool-<hex>`` (a taken one is renamed to its
user's lab name); the hub logs a line with ``warm pool:`` and ``ready`` (such as
``labhub: warm pool: 50/50 ready``) whenever the pool becomes full.
"""

from __future__ import annotations

import re
import subprocess
import time

from benchmarks.progress import say
from tests.support.hub import HubProcess

#: What the hub logs when its pool becomes full, such as ``labhub: warm pool: 50/50 ready``.
_FULL = re.compile(r"warm pool:\s*(\d+)\s*/\s*(\d+)\s+ready")
_SIZE = re.compile(r"([\d.]+)\s*([KMGT]?i?B)", re.IGNORECASE)
_UNITS_MIB = {
    "b": 1 / 2**20,
    "kib": 1 / 1024,
    "mib": 1.0,
    "gib": 1024.0,
    "tib": 1024.0**2,
    "kb": 1e3 / 2**20,
    "mb": 1e6 / 2**20,
    "gb": 1e9 / 2**20,
    "tb": 1e12 / 2**20,
}


def pool_supported() -> bool:
    """True when this checkout's LabDockerSpawner has a ``warm_pool_size`` setting."""
    try:
        from labhub import LabDockerSpawner
    except Exception:
        return False
    return "warm_pool_size" in LabDockerSpawner.class_trait_names()


def log_offset(hub: HubProcess) -> int:
    """Where the hub's log ends now: later pool lines are looked for after it."""
    return hub.log_path.stat().st_size if hub.log_path.exists() else 0


def full_line_since(hub: HubProcess, offset: int) -> str | None:
    """The first ``warm pool: N/N ready`` line the hub wrote after ``offset``, if any.

    Only a count that has reached its size counts: a line about one container
    becoming ready (``warm pool: NAME ready in 1.2 s``) does not.
    """
    if not hub.log_path.exists():
        return None
    with open(hub.log_path, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    for match in _FULL.finditer(text):
        if int(match.group(1)) >= int(match.group(2)):
            return match.group(0)
    return None


def free_pool_containers(prefix: str) -> list[str]:
    """Names of the running containers that are free pool containers of ``prefix``."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "--filter",
            f"name={prefix}--pool-",
            "--filter",
            "status=running",
            "--format",
            "{{.Names}}",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return [name for name in out if name.startswith(f"{prefix}--pool-")]


def wait_full(
    hub: HubProcess,
    prefix: str,
    size: int,
    since: int,
    timeout: float,
    grace: float = 15.0,
    first_container: float = 120.0,
) -> tuple[float, str]:
    """Wait until the pool is full again after log offset ``since``; return (seconds, how seen).

    The hub's log line is preferred. Counting running ``{prefix}--pool-*`` containers is
    the fallback: once ``size`` run and no line has come for ``grace`` seconds, that
    count is taken as full (a running container may not have finished its imports yet).
    A pool that has not run a single container after ``first_container`` seconds is
    not coming: that fails at once instead of after ``timeout``.
    """
    t0 = time.perf_counter()
    counted_full_at = None
    last_say = t0
    seen_any = False
    while True:
        now = time.perf_counter()
        if hub.proc is None or hub.proc.poll() is not None:
            say("pool", f"the hub's log ends:\n{hub.log_tail(20)}")
            raise RuntimeError("the hub stopped while its pool was filling")
        if full_line_since(hub, since):
            return now - t0, "hub log"
        running = len(free_pool_containers(prefix))
        seen_any = seen_any or running > 0
        if running >= size:
            counted_full_at = counted_full_at or now
            if now - counted_full_at >= grace:
                return counted_full_at - t0, "container count"
        else:
            counted_full_at = None
        if now - t0 > timeout or (not seen_any and now - t0 > first_container):
            say("pool", f"the hub's log ends:\n{hub.log_tail(20)}")
            raise TimeoutError(
                f"the warm pool was not full within {now - t0:.0f} s "
                f"({running}/{size} pool containers running, no 'warm pool: {size}/{size} "
                "ready' in the hub's log)"
            )
        if now - last_say >= 5:
            say("pool", f"filling: {running}/{size} pool containers running after {now - t0:.1f} s")
            last_say = now
        time.sleep(0.25)


def memory_mib(names: list[str]) -> dict[str, float]:
    """Each container's memory use in MiB, as ``docker stats --no-stream`` reports it."""
    if not names:
        return {}
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *names],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    ).stdout
    usage = {}
    for line in out.splitlines():
        name, _, mem = line.partition("\t")
        match = _SIZE.match(mem.split("/")[0].strip())
        if match and match.group(2).lower() in _UNITS_MIB:
            usage[name] = float(match.group(1)) * _UNITS_MIB[match.group(2).lower()]
    return usage


def pool_started(hub: HubProcess, prefix: str, within: float) -> bool:
    """True once a pool container runs or the pool is reported full, waiting up to ``within`` s."""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if free_pool_containers(prefix) or full_line_since(hub, 0):
            return True
        time.sleep(0.5)
    return False


def served_from_pool(hub: HubProcess, offset: int, users: list[str]) -> int | None:
    """How many of ``users`` the hub's log says got a pool container after ``offset``.

    Reads the hub's ``Lab of NAME came from the warm pool`` lines; None when it wrote none.
    """
    if not hub.log_path.exists():
        return None
    with open(hub.log_path, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    served = set(re.findall(r"Lab of (\S+) came from the warm pool", text))
    return len(served & set(users)) if served else None
