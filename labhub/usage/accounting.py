"""A lab container's own accounting (CPU-seconds, peak memory) as the engine shows it.

Blocking Docker calls; the recorder runs them in its own thread, never on a spawn.
Anything the engine cannot show (a stopped container, a Swarm task on another node,
a kernel without ``memory.peak``) is None, so the record says unknown rather than zero.
"""

from __future__ import annotations

import time
from typing import Any

from docker.errors import APIError, NotFound

from labhub.usage.store import Sample

#: The container's own cgroup (v2) peak memory, read inside it (its cgroup namespace).
MEMORY_PEAK_COMMAND = ["cat", "/sys/fs/cgroup/memory.peak"]

#: The label Swarm puts on each task's container, naming its service.
SWARM_SERVICE_LABEL = "com.docker.swarm.service.id"


def cpu_seconds(stats: dict[str, Any]) -> float | None:
    """CPU time the container has used, from the engine's stats; None when it shows none."""
    usage = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    total = usage.get("total_usage")
    if not total:  # a stopped container reports 0: unknown, not idle
        return None
    return total / 1e9


def peak_memory(stats: dict[str, Any], memory_peak_text: str | None) -> int | None:
    """The container's peak memory in bytes: cgroup v1's max_usage, else v2's memory.peak."""
    max_usage = (stats.get("memory_stats") or {}).get("max_usage")
    if max_usage:
        return int(max_usage)
    text = (memory_peak_text or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def container_of(client: Any, object_id: str) -> str | None:
    """The running container of a lab: the container itself, or its Swarm service's task here."""
    try:
        state = client.inspect_container(object_id)["State"]
        return object_id if state.get("Running") else None
    except NotFound:
        pass
    found = client.containers(filters={"label": f"{SWARM_SERVICE_LABEL}={object_id}"})
    return found[0]["Id"] if found else None  # none: the task runs on another node


def read_sample(client: Any, object_id: str) -> Sample:
    """The lab's accounting now; an empty Sample when the engine cannot show it."""
    at = time.time()
    try:
        container = container_of(client, object_id)
        if container is None:
            return Sample(at=at)
        stats = client.stats(container, stream=False, one_shot=True)
        peak_text = None
        if not (stats.get("memory_stats") or {}).get("max_usage"):
            execution = client.exec_create(container, MEMORY_PEAK_COMMAND)
            peak_text = client.exec_start(execution["Id"]).decode("ascii", "replace")
        return Sample(cpu_seconds(stats), peak_memory(stats, peak_text), at)
    except (APIError, OSError, ValueError, KeyError):
        return Sample(at=at)
