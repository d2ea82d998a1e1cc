"""labhub: a JupyterHub data-science lab for a team.

Importing is cheap: the spawner classes are loaded on first use, so a
``jupyterhub_config.py`` that only calls :func:`labhub.configure` pays for
nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .auth import LabAuthenticator
    from .docker_spawner import LabDockerSpawner
    from .hub_config import configure
    from .swarm_spawner import LabSwarmSpawner

__all__ = ["__version__", "LabDockerSpawner", "LabSwarmSpawner", "LabAuthenticator", "configure"]

_LAZY = {
    "LabDockerSpawner": ("docker_spawner", "LabDockerSpawner"),
    "LabSwarmSpawner": ("swarm_spawner", "LabSwarmSpawner"),
    "LabAuthenticator": ("auth", "LabAuthenticator"),
    "configure": ("hub_config", "configure"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        return getattr(import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'labhub' has no attribute {name!r}")
