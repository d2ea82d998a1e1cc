"""labhub: a JupyterHub data-science lab for a team.

Importing is cheap: the spawner classes are loaded on first use, so a
``jupyterhub_config.py`` that only calls :func:`labhub.configure` pays for
nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labhub._version import __version__

if TYPE_CHECKING:
    from labhub.auth import LabAuthenticator
    from labhub.hub.configure import configure
    from labhub.spawner.docker import LabDockerSpawner
    from labhub.spawner.swarm import LabSwarmSpawner

__all__ = ["__version__", "LabDockerSpawner", "LabSwarmSpawner", "LabAuthenticator", "configure"]

_LAZY = {
    "LabDockerSpawner": ("spawner.docker", "LabDockerSpawner"),
    "LabSwarmSpawner": ("spawner.swarm", "LabSwarmSpawner"),
    "LabAuthenticator": ("auth", "LabAuthenticator"),
    "configure": ("hub.configure", "configure"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        return getattr(import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'labhub' has no attribute {name!r}")
