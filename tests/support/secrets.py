"""Where a secret could leak on the real system: the process list and ``docker inspect``."""

from __future__ import annotations

import os
from pathlib import Path


def process_list() -> str:
    """Every command line on the machine, as ``ps`` would show them."""
    lines = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # the process ended while we looked
        lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return "\n".join(lines)


def container_exposure(container) -> str:
    """What anyone with ``docker inspect`` sees of a container: its env, labels, command, mounts."""
    config = container.attrs["Config"]
    return "\n".join(
        [
            *(config.get("Env") or []),
            *(f"{k}={v}" for k, v in (config.get("Labels") or {}).items()),
            " ".join(config.get("Cmd") or []),
            " ".join(config.get("Entrypoint") or []),
            repr(container.attrs["HostConfig"].get("Mounts")),
            repr(container.attrs.get("Mounts")),
        ]
    )
