"""One user's lab from the settings: ``(settings, user, profile) -> Lab`` (pure: no daemon, no disk).

:func:`build_lab` is the only place settings become a :class:`~labhub.lab.model.Lab`.
A spawn passes what is not a setting as plain values (the hub's environment with
the API token, the command, the port, CIFS credentials, the GPUs it holds); the
warm pool builds the labs of two stand-in usernames from the same settings value,
so the pool's template and a user's lab cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labhub.lab import mounts, packages
from labhub.lab.gateway import gateway_environment
from labhub.lab.model import LABEL_LAB, Lab, Overrides
from labhub.lab.mounts import LABEL_USER
from labhub.lab.names import lab_object_name, user_folder_name
from labhub.lab.settings import EXTRA_SETTINGS, LabSettings
from labhub.lab.specs import run_as, unset_after_switch
from labhub.profiles import gpus
from labhub.profiles.rules import Profile

#: Each part of :class:`Overrides` and the setting it comes from.
OVERRIDE_SETTINGS = dict(
    zip(
        (
            "create_kwargs",
            "host_config",
            "container_spec",
            "resources_spec",
            "placement_spec",
            "task_spec",
            "endpoint_spec",
        ),
        EXTRA_SETTINGS,
        strict=True,
    )
)

#: Variables JupyterHub derives from settings a profile may change; recomputed from the lab's.
SETTING_ENVIRONMENT = (
    "MEM_LIMIT",
    "MEM_GUARANTEE",
    "CPU_LIMIT",
    "CPU_GUARANTEE",
    "JUPYTERHUB_DEFAULT_URL",
)


def identity(settings: LabSettings) -> dict[str, Any]:
    """Who the lab runs as: container user, environment and (``direct``) a throwaway HOME."""
    who = run_as(
        settings.uid_strategy,
        settings.lab_uid,
        settings.lab_gid,
        settings.nb_user,
        settings.home_dir,
    )
    if not settings.throwaway_home:
        who.pop("tmpfs", None)
    return who


def personal_folder(settings: LabSettings, username: str) -> str:
    """The host path of ``username``'s personal folder."""
    return mounts.personal_folder(settings.personal_notebooks_dir, username)


def packages_folder(settings: LabSettings, username: str) -> str:
    """The host path of ``username``'s package folder."""
    return packages.packages_folder(settings.packages_dir, username)


def package_mounts(settings: LabSettings, username: str) -> list[dict[str, Any]]:
    """The package folder's mount, or none when persistent packages are off."""
    if not settings.persistent_packages:
        return []
    target = packages.packages_target(settings.uid_strategy, settings.nb_user)
    return [packages.packages_mount(packages_folder(settings, username), target)]


def package_environment(settings: LabSettings) -> dict[str, str]:
    """The environment that sends installs to the package folder (empty when off)."""
    if not settings.persistent_packages:
        return {}
    return packages.packages_environment(
        packages.packages_target(settings.uid_strategy, settings.nb_user)
    )


def lab_gateway_environment(settings: LabSettings, username: str) -> dict[str, str]:
    """The environment that sends ``username``'s kernels to the gateway (empty without one)."""
    return gateway_environment(
        url=settings.gateway_url,
        username=username,
        auth_token=settings.gateway_auth_token,
        request_timeout=settings.gateway_request_timeout,
        connect_timeout=settings.gateway_connect_timeout,
        validate_cert=settings.gateway_validate_cert,
        ca_file=settings.gateway_ca_file,
    )


def lab_environment(
    settings: LabSettings,
    username: str,
    hub_environment: Mapping[str, str],
    *,
    default_url: str | None = None,
) -> dict[str, str]:
    """The lab's environment: the hub's (token, URLs) with what the settings say on top.

    ``hub_environment`` is JupyterHub's ``get_env()``; the variables it derives from
    settings a profile may change (limits, default URL, ``environment``, the image)
    are taken from ``settings`` instead, in JupyterHub's order, so a profile's value
    wins. ``default_url`` is the formatted ``settings.default_url`` (None: as the hub had it).
    ``environment`` values must be resolved (no callables) before this.
    """
    env = {k: v for k, v in hub_environment.items() if k not in SETTING_ENVIRONMENT}
    for key, value in (
        ("MEM_LIMIT", settings.mem_limit),
        ("MEM_GUARANTEE", settings.mem_guarantee),
        ("CPU_LIMIT", settings.cpu_limit),
        ("CPU_GUARANTEE", settings.cpu_guarantee),
    ):
        if value:
            env[key] = str(value)
    if default_url is None:
        default_url = hub_environment.get("JUPYTERHUB_DEFAULT_URL", "")
    if default_url:
        env["JUPYTERHUB_DEFAULT_URL"] = default_url
    env.update({k: v for k, v in settings.environment.items() if not callable(v)})
    if settings.image:
        env["JUPYTER_IMAGE_SPEC"] = settings.image
    admin_unset = env.get("JUPYTER_ENV_VARS_TO_UNSET")
    env.update(identity(settings)["environment"])
    if "JUPYTER_ENV_VARS_TO_UNSET" in env:
        # the root phase's own variables join the admin's, never replace them
        env["JUPYTER_ENV_VARS_TO_UNSET"] = unset_after_switch(
            admin_unset, env["JUPYTER_ENV_VARS_TO_UNSET"]
        )
    # remote kernels run as the hub user's name; the folder name is only for paths
    env.update(lab_gateway_environment(settings, username))
    env.update(package_environment(settings))
    return env


def lab_mounts(
    settings: LabSettings,
    username: str,
    cifs_credentials: Mapping[str, mounts.CifsCredentials | None] | None = None,
) -> list[dict[str, Any]]:
    """Every mount of ``username``'s lab, as Engine API Mount dicts.

    ``cifs_credentials`` maps each share's name to its credentials (None for a
    guest share); raises :class:`~labhub.lab.mounts.MountConfigError` for one a
    mount option cannot carry.
    """
    credentials = cifs_credentials or {}
    cifs = [
        mounts.cifs_mount(
            share,
            prefix=settings.prefix,
            username=username,
            uid=settings.lab_uid,
            gid=settings.lab_gid,
            credentials=credentials.get(share.name),
        )
        for share in settings.cifs_shares
    ]
    return mounts.lab_mounts(
        settings.layout(), username, cifs=cifs + package_mounts(settings, username)
    )


def fixed_overrides(settings: LabSettings) -> Overrides:
    """The admin's ``extra_*`` settings as given (callables left out: they are per user)."""
    return Overrides(
        **{
            part: value or {}
            for part, setting in OVERRIDE_SETTINGS.items()
            if not callable(value := settings.extra.get(setting))
        }
    )


def build_lab(
    settings: LabSettings,
    username: str,
    *,
    command: Sequence[str],
    hub_environment: Mapping[str, str] | None = None,
    name: str = "",
    port: int | None = None,
    default_url: str | None = None,
    cifs_credentials: Mapping[str, mounts.CifsCredentials | None] | None = None,
    profile: Profile | None = None,
    gpu_ids: Sequence[str] = (),
    hub_assigns_gpus: bool = True,
) -> Lab:
    """``username``'s lab from ``settings`` (the chosen profile already merged in).

    ``name`` defaults to labhub's naming rule; ``port`` to the configured one.
    ``gpu_ids`` are the devices the lab sees when the hub assigns them (Docker: those
    it holds alone or shares); where the engine does (Swarm), the profile's count is
    reserved instead. A lab without GPUs gets ``NVIDIA_VISIBLE_DEVICES=void``, over any
    value of the image or ``environment``.
    """
    who = identity(settings)
    environment = lab_environment(
        settings, username, hub_environment or {}, default_url=default_url
    )
    gpu_count = 0
    seen_gpus: tuple[str, ...] = ()
    wants_gpus = profile is not None and bool(profile.gpus)
    if not hub_assigns_gpus:
        # Swarm: reserve a count; the node's runtime reads the ids Swarm assigns
        # (DOCKER_RESOURCE_GPU), and a lab reserving none sees none
        gpu_count = profile.exclusive_gpus if profile is not None else 0
        if not gpu_count:
            environment[gpus.VISIBLE_DEVICES] = gpus.NO_DEVICES
    else:
        ids = tuple(gpu_ids) if wants_gpus else ()
        # always set: where nvidia is the engine's default runtime, unset means the image's "all"
        environment[gpus.VISIBLE_DEVICES] = gpus.visible_devices(ids)
        if settings.gpu_request != "environment":
            seen_gpus = ids
    return Lab(
        name=name or lab_object_name(settings.prefix, username),
        image=settings.image,
        command=list(command),
        environment=environment,
        user=who["user"],
        workdir=settings.home_dir,
        mounts=lab_mounts(settings, username, cifs_credentials),
        labels={LABEL_LAB: "true", LABEL_USER: user_folder_name(username)},
        network=settings.network_name,
        port=settings.port if port is None else port,
        publish_port=not (settings.use_internal_ip or settings.uses_host_network),
        host_ip=settings.host_ip,
        mem_limit=settings.mem_limit,
        mem_guarantee=settings.mem_guarantee,
        cpu_limit=settings.cpu_limit,
        cpu_guarantee=settings.cpu_guarantee,
        links=dict(settings.links),
        placement_constraints=list(settings.placement_constraints),
        placement_preferences=list(settings.placement_preferences),
        tmpfs=who.get("tmpfs", {}),
        gpu_ids=seen_gpus,
        gpu_count=gpu_count,
    )
