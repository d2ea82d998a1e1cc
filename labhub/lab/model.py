"""What one user's lab is, as plain data, and its two translations: a container and a service.

Nothing here talks to a daemon or touches the disk. A spawner gathers its
settings once per spawn into a :class:`Lab`; :func:`container_spec` turns it
into ``create_container`` arguments for Docker and :func:`service_spec` into
``create_service`` arguments for Swarm. Both translations take the admin's
overrides through the same merge (:func:`labhub.lab.specs.deep_merge`) and then the
same hardening (:mod:`labhub.lab.specs`), so the two engines cannot drift apart.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from docker.api.container import ContainerApiMixin
from docker.api.service import ServiceApiMixin
from docker.types import (
    ContainerSpec,
    EndpointSpec,
    HostConfig,
    Placement,
    Resources,
    RestartPolicy,
    TaskTemplate,
)

from labhub.lab import engine_limits
from labhub.lab.mounts import LABEL_USER, volume_mount
from labhub.lab.names import is_valid_object_name
from labhub.lab.specs import deep_merge, harden_host_config, harden_service_container
from labhub.profiles.gpus import device_requests, generic_resources

#: Label on every lab container and service, so the admin can list them with ``--filter``.
LABEL_LAB = "org.labhub.lab"


class LabSpecError(ValueError):
    """An override cannot be honoured by the engine; the message names the setting."""


@dataclass(frozen=True)
class Lab:
    """One user's lab, the same for Docker and Swarm.

    ``network`` is ``"host"`` (the lab listens on ``port`` of the host itself),
    a Docker network name, or ``""`` (Docker's default bridge, the port published
    on ``host_ip``). ``publish_port`` says whether the hub reaches the lab through
    a published port rather than the lab's own address.
    """

    name: str
    image: str
    command: list[str]
    environment: dict[str, str]
    user: str
    workdir: str
    mounts: list[dict[str, Any]]
    labels: dict[str, str]
    network: str
    port: int
    publish_port: bool = False
    host_ip: str = "127.0.0.1"
    mem_limit: int | None = None
    mem_guarantee: int | None = None
    cpu_limit: float | None = None
    cpu_guarantee: float | None = None
    links: dict[str, str] = field(default_factory=dict)
    placement_constraints: list[str] = field(default_factory=list)
    placement_preferences: list[str] = field(default_factory=list)
    tmpfs: dict[str, str] = field(default_factory=dict)
    #: GPUs this lab holds: exact device ids on Docker, a count Swarm assigns from its nodes
    gpu_ids: tuple[str, ...] = ()
    gpu_count: int = 0

    @property
    def uses_host_network(self) -> bool:
        return self.network == "host"


@dataclass(frozen=True)
class Overrides:
    """The admin's ``extra_*`` settings, each merged over the matching part of the lab."""

    create_kwargs: dict[str, Any] = field(default_factory=dict)
    host_config: dict[str, Any] = field(default_factory=dict)
    container_spec: dict[str, Any] = field(default_factory=dict)
    resources_spec: dict[str, Any] = field(default_factory=dict)
    placement_spec: dict[str, Any] = field(default_factory=dict)
    task_spec: dict[str, Any] = field(default_factory=dict)
    endpoint_spec: dict[str, Any] = field(default_factory=dict)


def _checked(
    kind: Any, setting: str, kwargs: dict[str, Any], engine: str = "Docker"
) -> dict[str, Any]:
    """``kwargs`` if ``kind`` accepts every key; otherwise one sentence naming the setting and engine."""
    accepted = set(inspect.signature(kind).parameters) - {"self", "version"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        close = {m for key in unknown for m in difflib.get_close_matches(key, accepted, n=2)}
        hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
        raise LabSpecError(
            f"{setting} has keys {engine} does not take for a lab: {', '.join(unknown)}{hint}."
        )
    return kwargs


def _refuse(message: str | None) -> None:
    if message:
        raise LabSpecError(message)


# --- Docker: one container -------------------------------------------------------------


def container_spec(lab: Lab, overrides: Overrides | None = None) -> dict[str, Any]:
    """``create_container`` keyword arguments, with ``host_config`` as a plain dict.

    The spawner passes ``host_config`` through docker-py's ``create_host_config``;
    it is left a dict here so it can be read and tested without a client.
    """
    overrides = overrides or Overrides()
    _refuse(engine_limits.refusal(engine_limits.DOCKER, {"cpu_guarantee": lab.cpu_guarantee}))
    for target, options in lab.tmpfs.items():
        _refuse(engine_limits.tmpfs_refusal(engine_limits.DOCKER, target, options))
    create: dict[str, Any] = {
        "image": lab.image,
        "name": lab.name,
        "command": list(lab.command),
        "environment": dict(lab.environment),
        "user": lab.user,
        "working_dir": lab.workdir,
        "labels": dict(lab.labels),
    }
    if not lab.uses_host_network:
        create["ports"] = {f"{lab.port}/tcp": None}
    create = deep_merge(create, overrides.create_kwargs)
    create.pop("host_config", None)  # only extra_host_config may change it
    _checked(ContainerApiMixin.create_container, "extra_create_kwargs", create)
    # who runs the lab is decided by uid_strategy alone: an override must not make it root
    create["user"] = lab.user

    host: dict[str, Any] = {
        "auto_remove": False,
        "links": dict(lab.links),
        "mounts": list(lab.mounts),
        "network_mode": lab.network or "bridge",
    }
    if lab.tmpfs:
        host["tmpfs"] = dict(lab.tmpfs)
    if lab.mem_limit is not None:
        host["mem_limit"] = lab.mem_limit
    if lab.mem_guarantee is not None:
        host["mem_reservation"] = lab.mem_guarantee
    if lab.cpu_limit is not None:
        period = overrides.host_config.get("cpu_period", 100_000)
        host["cpu_period"] = period
        host["cpu_quota"] = int(lab.cpu_limit * period)
    if lab.publish_port:
        host["port_bindings"] = {lab.port: (lab.host_ip,)}
    if lab.gpu_ids:
        host["device_requests"] = device_requests(lab.gpu_ids)
    host = harden_host_config(deep_merge(host, overrides.host_config), lab.user)
    create["host_config"] = _checked(HostConfig, "extra_host_config", host)
    return create


# --- Swarm: one service --------------------------------------------------------------


def _nanocpus(cpus: float | None) -> int | None:
    return int(cpus * 1e9) if cpus else None


def service_spec(lab: Lab, overrides: Overrides | None = None) -> dict[str, Any]:
    """``create_service`` keyword arguments: a task template, an endpoint, name and labels.

    Placement constraints from the lab and from ``extra_placement_spec`` are both
    kept; a key that Swarm's types do not know is refused in one sentence.
    """
    overrides = overrides or Overrides()
    # what a service has no place for is refused, not dropped: the admin asked for it
    _refuse(
        engine_limits.refusal(
            engine_limits.SWARM, {"extra_host_config": overrides.host_config, "links": lab.links}
        )
    )
    if not is_valid_object_name(lab.name):
        raise LabSpecError(
            f"The service name {lab.name!r} is not valid on Swarm (at most 63 letters, digits, "
            "'-' or '_'); leave name_template empty or change it."
        )
    container = deep_merge(
        {
            "image": lab.image,
            "args": list(lab.command),
            "env": dict(lab.environment),
            "user": lab.user,
            "workdir": lab.workdir,
            "labels": dict(lab.labels),
            "mounts": list(lab.mounts) + swarm_tmpfs_mounts(lab),
        },
        overrides.container_spec,
    )
    container["user"] = lab.user
    container = harden_service_container(container)

    resources = deep_merge(
        {
            "mem_limit": lab.mem_limit,
            "mem_reservation": lab.mem_guarantee,
            "cpu_limit": _nanocpus(lab.cpu_limit),
            "cpu_reservation": _nanocpus(lab.cpu_guarantee),
            "generic_resources": generic_resources(lab.gpu_count) or None,
        },
        overrides.resources_spec,
    )

    extra_placement = dict(overrides.placement_spec)
    constraints = list(lab.placement_constraints)
    for constraint in extra_placement.pop("constraints", None) or []:
        if constraint not in constraints:
            constraints.append(constraint)
    preferences = [("spread", p) for p in lab.placement_preferences]
    preferences += list(extra_placement.pop("preferences", None) or [])
    placement = {
        "constraints": constraints or None,
        "preferences": preferences or None,
        **extra_placement,
    }

    task = deep_merge(
        {
            # a lab that dies stays dead: the hub notices and the user starts a fresh one
            "restart_policy": RestartPolicy(condition="none"),
            "networks": [lab.network] if lab.network else [],
        },
        overrides.task_spec,
    )
    endpoint = deep_merge(
        {"ports": {None: (lab.port, "tcp")}} if lab.publish_port else {},
        overrides.endpoint_spec,
    )
    create = deep_merge(
        {"name": lab.name, "labels": dict(lab.labels)},
        overrides.create_kwargs,
    )
    for reserved in ("task_template", "endpoint_spec"):
        if reserved in create:
            raise LabSpecError(
                f"extra_create_kwargs may not set {reserved}; use extra_task_spec or "
                "extra_endpoint_spec instead."
            )
    # a key create_service does not take would fail only at the spawn, as a TypeError
    _checked(ServiceApiMixin.create_service, "extra_create_kwargs", create, "Swarm")
    try:
        task_template = TaskTemplate(
            container_spec=ContainerSpec(
                **_checked(ContainerSpec, "extra_container_spec", container)
            ),
            resources=Resources(**_checked(Resources, "extra_resources_spec", resources)),
            placement=Placement(**_checked(Placement, "extra_placement_spec", placement)),
            **_checked(TaskTemplate, "extra_task_spec", task),
        )
        endpoint_spec = EndpointSpec(**_checked(EndpointSpec, "extra_endpoint_spec", endpoint))
    except (TypeError, ValueError) as err:
        if isinstance(err, LabSpecError):
            raise
        raise LabSpecError(f"A Swarm override cannot be used: {err}.") from None
    return {"task_template": task_template, "endpoint_spec": endpoint_spec, **create}


#: Mount flags Docker gives a HostConfig.Tmpfs unless its options say otherwise.
_DOCKER_TMPFS_FLAGS = (("exec", "noexec"), ("suid", "nosuid"), ("dev", "nodev"))


def swarm_tmpfs_mounts(lab: Lab) -> list[dict[str, Any]]:
    """The lab's tmpfs folders for Swarm: each a local volume of type tmpfs with the same options.

    A Swarm tmpfs mount takes a mode and a size, no owner, and its mode is not even
    kept: the runtime gives a tmpfs the mode of the folder it covers (the image's
    HOME, or the 0755 folder Docker makes for the working directory), so a HOME
    asked as ``uid=2100,gid=2100,mode=1777`` came out root's, 0755, and the lab uid
    could not write it. The local volume driver mounts a tmpfs with every option,
    owner included, on the node that runs the task; like Docker's it is empty at each
    start and gone when the lab stops (the named volume left holds nothing).
    ``NoCopy`` keeps the engine from copying the image's folder, and its owner, into it.
    """
    specs = []
    for target, options in lab.tmpfs.items():
        _refuse(engine_limits.tmpfs_refusal(engine_limits.SWARM, target, options))
        given = [o.strip() for o in options.split(",") if o.strip()]
        flags = [off for on, off in _DOCKER_TMPFS_FLAGS if on not in given and off not in given]
        o = ",".join(given + flags)
        # the options are in the name: a volume left by a lab with another owner is not reused
        digest = hashlib.sha256(f"{target}\0{o}".encode()).hexdigest()[:8]
        mount = volume_mount(
            f"{lab.name}-tmpfs-{digest}",
            target,
            driver_options={"type": "tmpfs", "device": "tmpfs", "o": o},
            labels={k: v for k, v in lab.labels.items() if k == LABEL_USER},
        )
        mount["VolumeOptions"]["NoCopy"] = True
        specs.append(mount)
    return specs
