"""Which GPU each lab holds: allocation over the host's device list, and the engine requests; pure.

Nothing here talks to a daemon; :func:`discover_devices` is the one function that
runs a program (``nvidia-smi``), and only when the admin left ``gpu_devices`` empty.
The spawner keeps one :class:`GpuPool` per hub process and writes a lab's device ids
into its state, so a restarted hub gives every running lab its GPUs back.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from typing import Any

#: Docker's device driver for NVIDIA GPUs, and the Swarm generic-resource kind for them.
NVIDIA_DRIVER = "nvidia"
GPU_KIND = "gpu"

#: The NVIDIA runtime's selector variable, and its value for "no GPU, no driver libraries".
VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
NO_DEVICES = "void"


class NoFreeGpu(RuntimeError):
    """Too few free GPUs for a lab; the message is one sentence for the user."""


class GpuPool:
    """The host's GPUs and which lab (by its container or service name) holds or shares which.

    A lab of a ``gpus: N`` profile holds N devices alone. A lab of a ``gpus: "shared"``
    profile shares the devices no lab held alone when it started; while it runs, those
    devices are given to no lab alone. So a device is either held by one lab, or seen by
    any number of shared labs, never both.
    """

    def __init__(self, devices: Iterable[str]):
        self.devices = tuple(dict.fromkeys(str(d) for d in devices))
        self._held: dict[str, tuple[str, ...]] = {}
        self._shared: dict[str, tuple[str, ...]] = {}

    def _held_alone(self, but: str = "") -> set[str]:
        return {d for owner, ids in self._held.items() if owner != but for d in ids}

    def _seen_shared(self, but: str = "") -> set[str]:
        return {d for owner, ids in self._shared.items() if owner != but for d in ids}

    def free(self) -> list[str]:
        """Devices a lab may take alone: held by no lab and seen by no shared lab."""
        taken = self._held_alone() | self._seen_shared()
        return [d for d in self.devices if d not in taken]

    def allocate(self, owner: str, count: int) -> tuple[str, ...]:
        """``count`` free device ids for ``owner``, lowest first; NoFreeGpu when too few are free."""
        self.release(owner)  # a lab starting again gives back what it held before
        if count <= 0:
            return ()
        free = self.free()
        if len(free) < count:
            total = len(self.devices)
            shared = len(self._seen_shared() - self._held_alone())
            in_shared = f", {shared} in use by shared labs" if shared else ""
            raise NoFreeGpu(
                f"Your lab needs {count} GPU{'s' if count > 1 else ''} and the host has "
                f"{len(free)} free (of {total}{in_shared}); nothing was started, "
                "try again when another lab stops or choose a profile without GPUs."
            )
        ids = tuple(free[:count])
        self._held[owner] = ids
        return ids

    def share(self, owner: str) -> tuple[str, ...]:
        """The devices no lab holds alone, seen by ``owner``; NoFreeGpu when every one is held."""
        self.release(owner)
        held = self._held_alone()
        ids = tuple(d for d in self.devices if d not in held)
        if not ids:
            raise NoFreeGpu(
                f"Your lab shares the GPUs no other lab holds alone, and all {len(self.devices)} "
                "are held now; nothing was started, try again when another lab stops or "
                "choose a profile without GPUs."
            )
        self._shared[owner] = ids
        return ids

    def restore(self, owner: str, ids: Iterable[str], shared: bool = False) -> tuple[str, ...]:
        """Mark ``ids`` as ``owner``'s again (a restarted hub loading a running lab's state).

        Ids no longer in the device list are dropped, and so are ids another lab holds
        alone (or, for a lab that held them alone, ids a shared lab sees).
        """
        self.release(owner)
        taken = self._held_alone(owner) if shared else self._held_alone(owner) | self._seen_shared()
        kept = tuple(
            d for d in dict.fromkeys(str(i) for i in ids) if d in self.devices and d not in taken
        )
        if kept:
            (self._shared if shared else self._held)[owner] = kept
        return kept

    def release(self, owner: str) -> tuple[str, ...]:
        """Give back what ``owner`` held or shared; returns those ids."""
        return self._held.pop(owner, ()) or self._shared.pop(owner, ())


_POOLS: dict[tuple[str, ...], GpuPool] = {}


def pool_for(devices: Iterable[str]) -> GpuPool:
    """The hub's one pool for this device list (every spawner of the hub shares it)."""
    key = tuple(dict.fromkeys(str(d) for d in devices))
    if key not in _POOLS:
        _POOLS[key] = GpuPool(key)
    return _POOLS[key]


def all_pools() -> list[GpuPool]:
    """Every GPU pool of this hub (for its metrics)."""
    return list(_POOLS.values())


def device_requests(ids: Iterable[str]) -> list[dict[str, Any]]:
    """docker-py ``device_requests`` for exactly these NVIDIA devices (never ``count=-1``)."""
    ids = list(ids)
    if not ids:
        return []
    return [{"driver": NVIDIA_DRIVER, "device_ids": ids, "capabilities": [["gpu"]]}]


def generic_resources(count: int) -> dict[str, int]:
    """Swarm ``generic_resources`` reserving ``count`` GPUs; Swarm picks the node's ids."""
    return {GPU_KIND: count} if count > 0 else {}


def visible_devices(ids: Iterable[str]) -> str:
    """``NVIDIA_VISIBLE_DEVICES`` for these ids; ``void`` for none.

    Unset, the NVIDIA runtime (where it is the engine's default) would honour the
    image's own value, ``all`` in the CUDA images: every GPU of the host.
    """
    return ",".join(ids) or NO_DEVICES


def discover_devices(
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """The host's GPU indexes from ``nvidia-smi``; empty where the NVIDIA tools are missing."""
    if which("nvidia-smi") is None:
        return []
    try:
        result = run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode != 0:
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def runtime_missing_message(error: str) -> str | None:
    """One sentence when the engine refused a GPU request because it has no NVIDIA runtime."""
    lowered = error.lower()
    if "could not select device driver" in lowered or "nvidia-container" in lowered:
        return (
            "Your lab asks for a GPU but this Docker engine has no NVIDIA runtime "
            "(nvidia-container-toolkit); nothing was started, ask the lab admin."
        )
    return None
