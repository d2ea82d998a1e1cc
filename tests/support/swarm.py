"""A one-node Docker Swarm on 127.0.0.1 for the tests; left again only if the tests made it."""

from __future__ import annotations

import subprocess

from jupyterhub.utils import random_port


def swarm_state() -> str:
    out = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True, text=True
    )
    return out.stdout.strip()


def ensure_swarm() -> bool:
    """Make this engine a one-node swarm on loopback; True if this call initialised it."""
    if swarm_state() == "active":
        return False
    port = random_port()
    result = subprocess.run(
        [
            "docker",
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker swarm init failed: {result.stderr.strip()}")
    return True


def leave_swarm() -> None:
    subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, text=True)
