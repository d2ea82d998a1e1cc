"""What each engine cannot honour: a setting it would drop is refused in one sentence, never ignored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from labhub.hub.options import SPAWNER_CLASSES, spawner_kind

DOCKER, SWARM = "docker", "swarm"

#: How a refusal names each engine: the spawner an admin configures, and what it runs.
ENGINE_NAMES = {
    DOCKER: f"{SPAWNER_CLASSES[DOCKER].rsplit('.', 1)[-1]} (Docker containers)",
    SWARM: f"{SPAWNER_CLASSES[SWARM].rsplit('.', 1)[-1]} (Swarm services)",
}

_SERVICE_SPEC = (
    "a Docker container has no Swarm service spec; use extra_create_kwargs or extra_host_config"
)

#: Settings each engine cannot honour, with the reason that ends the refusal's sentence.
CANNOT_HONOUR: dict[str, dict[str, str]] = {
    SWARM: {
        "extra_host_config": (
            "a Swarm service has no host config; use extra_container_spec, "
            "extra_resources_spec or extra_task_spec"
        ),
        "links": "Swarm services have no container links; reach other services by network",
        "warm_pool_size": "the warm pool keeps started containers on the hub's own Docker engine",
    },
    DOCKER: {
        "cpu_guarantee": "Docker reserves no CPU for a container; cpu_limit caps it",
        "placement_constraints": "a Docker container runs on the hub's own engine",
        "placement_preferences": "a Docker container runs on the hub's own engine",
        "extra_container_spec": _SERVICE_SPEC,
        "extra_resources_spec": _SERVICE_SPEC,
        "extra_placement_spec": _SERVICE_SPEC,
        "extra_task_spec": _SERVICE_SPEC,
        "extra_endpoint_spec": _SERVICE_SPEC,
    },
}

#: Options of a tmpfs that both engines carry: Docker's HostConfig.Tmpfs takes them as they
#: are, Swarm as the options of a local tmpfs volume (its own tmpfs mounts take mode and size only).
TMPFS_OPTIONS = frozenset({"uid", "gid", "mode", "size", "nr_inodes", "nr_blocks"})
TMPFS_FLAGS = frozenset({"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev"})


def is_given(value: Any) -> bool:
    """True for a value that asks for something: not None, not empty, not zero, not False."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (str, bytes, Mapping, list, tuple, set, frozenset)):
        return len(value) > 0
    return True


def refusal(engine: str, settings: Mapping[str, Any]) -> str | None:
    """One sentence refusing the first of ``settings`` that ``engine`` cannot honour, or None.

    ``settings`` maps setting names to the values the admin gave; names the engine
    honours are ignored, and an empty or zero value asks for nothing.
    """
    for name, reason in CANNOT_HONOUR[engine].items():
        if is_given(settings.get(name)):
            return f"{name} cannot be honoured by {ENGINE_NAMES[engine]}: {reason}."
    return None


def tmpfs_refusal(engine: str, target: str, options: str) -> str | None:
    """One sentence refusing tmpfs ``options`` at ``target`` that ``engine`` cannot carry, or None."""
    unknown = []
    for option in filter(None, (o.strip() for o in options.split(","))):
        key = option.split("=", 1)[0]
        if (key not in TMPFS_OPTIONS or "=" not in option) and option not in TMPFS_FLAGS:
            unknown.append(option)
    if unknown:
        return (
            f"The tmpfs at {target} has options {ENGINE_NAMES[engine]} cannot carry: "
            f"{', '.join(unknown)} (allowed: {', '.join(sorted(TMPFS_OPTIONS | TMPFS_FLAGS))})."
        )
    return None


def engine_of(spawner_class: type) -> str | None:
    """``docker`` or ``swarm`` for a lab spawner class or a subclass of one; None for another spawner."""
    for cls in spawner_class.__mro__:
        kind = spawner_kind(cls.__name__)
        if kind is not None:
            return kind
    return None


def given_settings(spawner: Any, names: Iterable[str]) -> dict[str, Any]:
    """The values the admin gave ``spawner`` for ``names``: its traits, else its config sections.

    A setting that is not a trait of this spawner (``warm_pool_size`` on Swarm) is
    read from the config sections of the spawner's classes, where traitlets would
    only warn about it. A callable value depends on the user and is checked at spawn.
    """
    found: dict[str, Any] = {}
    config = getattr(spawner, "config", None) or {}
    for name in names:
        if spawner.has_trait(name):
            value = getattr(spawner, name)
        else:
            value = None
            for cls in type(spawner).__mro__:
                section = config.get(cls.__name__) or {}
                if name in section:
                    value = section[name]
                    break
        if not callable(value):
            found[name] = value
    return found
