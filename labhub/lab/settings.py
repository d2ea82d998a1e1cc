"""The lab's settings as one frozen value, their checks, and a profile merged into them (pure: no daemon, no disk).

A spawner reads its traits once per spawn into a :class:`LabSettings`
(:func:`labhub.spawner.settings.settings_from_traits`); the chosen profile is merged
into that value with :func:`merge_profile`, never set on the spawner. The checks
here are the ones the traits run when an admin sets them, so a value made by a
merge is held to the same rules, with the same one-sentence messages.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labhub.hub.options import (
    DEFAULT_LAB_GID,
    DEFAULT_LAB_ROOT,
    DEFAULT_LAB_UID,
    DEFAULT_UID_STRATEGY,
)
from labhub.lab import mounts, teams
from labhub.lab.specs import UID_STRATEGIES
from labhub.profiles.rules import overridden_values

#: Settings a profile merges into the ``extra`` overrides rather than into a field of its own.
EXTRA_SETTINGS = (
    "extra_create_kwargs",
    "extra_host_config",
    "extra_container_spec",
    "extra_resources_spec",
    "extra_placement_spec",
    "extra_task_spec",
    "extra_endpoint_spec",
)


# --- the checks the traits and the merge share -----------------------------------------


def absolute_path(setting: str, value: str) -> str:
    """``value`` normalised, if it is an absolute host path; one sentence naming ``setting`` otherwise."""
    if not os.path.isabs(value):
        raise ValueError(f"{setting} must be an absolute host path, not {value!r}.")
    return os.path.normpath(value)


def lab_id(setting: str, value: int) -> int:
    """``value`` if it is a uid or gid a lab may use: never root, never negative."""
    if value <= 0:
        raise ValueError(
            f"{setting} must be a positive id, not {value}: lab files must not belong to root."
        )
    return value


def cifs_shares(raw: Any) -> tuple[mounts.CifsShare, ...]:
    """Every entry of ``cifs_shares`` checked and parsed; names must be unique."""
    names: set[str] = set()
    parsed = []
    for entry in raw:
        share = mounts.parse_cifs_share(entry)
        if share.name in names:
            raise ValueError(f"Two cifs_shares are named {share.name!r}; names must be unique.")
        names.add(share.name)
        parsed.append(share)
    return tuple(parsed)


def gateway_url(url: str) -> str:
    """``url`` if it is empty or an http(s) URL."""
    if url and not url.startswith(("http://", "https://")):
        raise ValueError(f"gateway_url must start with http:// or https://, not {url!r}.")
    return url


def uid_strategy(value: str) -> str:
    if value not in UID_STRATEGIES:
        raise ValueError(f"uid_strategy must be one of {UID_STRATEGIES}, not {value!r}.")
    return value


# --- the value ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LabSettings:
    """Everything an admin set that decides what a lab is, for every user alike.

    Folder fields left empty are derived from ``lab_root`` as the traits derive them.
    ``environment`` and ``extra`` may hold callables (JupyterHub's per-user hooks);
    the spawner resolves them for one user, and a value holding one cannot serve a
    warm pool.
    """

    # where notebooks and packages live on the host
    lab_root: str = DEFAULT_LAB_ROOT
    personal_notebooks_dir: str = ""
    shared_notebooks_dir: str = ""
    packages_dir: str = ""
    demo_notebooks_dir: str = ""
    prepare_folders: bool = True
    folder_creation: str = "auto"
    persistent_packages: bool = True
    # inside the lab
    personal_mount_path: str = "/home/jovyan/work"
    shared_mount_path: str = "/home/jovyan/shared"
    home_dir: str = "/home/jovyan"
    nb_user: str = "jovyan"
    # who the lab runs as
    lab_uid: int = DEFAULT_LAB_UID
    lab_gid: int = DEFAULT_LAB_GID
    uid_strategy: str = DEFAULT_UID_STRATEGY
    throwaway_home: bool = True
    # more mounts
    lab_read_only_volumes: Mapping[str, str] = field(default_factory=dict)
    lab_volumes: Mapping[str, str] = field(default_factory=dict)
    volume_driver_options: Mapping[str, Any] = field(default_factory=dict)
    cifs_shares: tuple[mounts.CifsShare, ...] = ()
    #: which hub groups get a team folder: shell-style patterns (True in the trait is ``("*",)``)
    team_folders: tuple[str, ...] = ()
    # remote kernels
    gateway_url: str = ""
    gateway_auth_token: str = field(default="", repr=False)  # reaches labs, never logs
    gateway_request_timeout: float = 0.0
    gateway_connect_timeout: float = 0.0
    gateway_validate_cert: bool = True
    gateway_ca_file: str = ""
    # the container or service
    image: str = ""
    environment: Mapping[str, Any] = field(default_factory=dict, repr=False)
    default_url: str = ""
    mem_limit: int | None = None
    mem_guarantee: int | None = None
    cpu_limit: float | None = None
    cpu_guarantee: float | None = None
    links: Mapping[str, str] = field(default_factory=dict)
    network_name: str = ""
    port: int = 8888
    host_ip: str = "127.0.0.1"
    use_internal_ip: bool = False
    prefix: str = "labhub"
    remove: bool = True
    placement_constraints: tuple[str, ...] = ()
    placement_preferences: tuple[str, ...] = ()
    #: the admin's ``extra_*`` overrides by setting name, each a dict or a callable
    extra: Mapping[str, Any] = field(default_factory=dict)
    # GPUs
    gpu_request: str = "device_requests"

    def __post_init__(self) -> None:
        # frozen: derived defaults are written once, here, as the traits' @default would
        for name, leaf in (
            ("personal_notebooks_dir", "personal_notebooks"),
            ("shared_notebooks_dir", "shared_notebooks"),
            ("packages_dir", "packages"),
        ):
            if not getattr(self, name):
                object.__setattr__(self, name, os.path.join(self.lab_root, leaf))
        # the trait's True / False / list, as a profile may merge it in
        object.__setattr__(self, "team_folders", teams.team_patterns(self.team_folders))

    @property
    def uses_host_network(self) -> bool:
        return self.network_name == "host"

    def layout(self) -> mounts.LabVolumes:
        """Where the notebooks are on the host and in the lab, and the admin's extra mounts."""
        return mounts.LabVolumes(
            personal_root=self.personal_notebooks_dir,
            shared_root=self.shared_notebooks_dir,
            personal_mount_path=self.personal_mount_path,
            shared_mount_path=self.shared_mount_path,
            read_only_volumes=dict(self.lab_read_only_volumes),
            volumes=dict(self.lab_volumes),
            volume_driver_options=dict(self.volume_driver_options),
        )

    def per_user_hooks(self) -> list[str]:
        """The container settings a callable computes per user; empty when all are plain.

        ``environment`` values may be callables: they are the user's own variables,
        not part of what a lab is made of.
        """
        hooks = [name for name in EXTRA_SETTINGS if callable(self.extra.get(name))]
        if callable(self.environment):
            hooks.append("environment")
        if callable(self.image):
            hooks.append("image")
        return hooks


def check_settings(settings: LabSettings) -> LabSettings:
    """``settings`` with its paths normalised, if every value obeys the traits' rules.

    Raises ValueError with the trait's own one sentence otherwise.
    """
    paths = {
        name: absolute_path(name, getattr(settings, name))
        for name in ("lab_root", "personal_notebooks_dir", "shared_notebooks_dir", "packages_dir")
    }
    lab_id("lab_uid", settings.lab_uid)
    lab_id("lab_gid", settings.lab_gid)
    uid_strategy(settings.uid_strategy)
    gateway_url(settings.gateway_url)
    return dataclasses.replace(settings, **paths)


# --- a profile, merged as data ---------------------------------------------------------------


def setting_value(settings: LabSettings, key: str) -> Any:
    """The current value of setting ``key`` (an ``extra_*`` one included)."""
    if key in EXTRA_SETTINGS:
        return settings.extra.get(key) or {}
    return getattr(settings, key)


def merge_profile(
    settings: LabSettings,
    override: Mapping[str, Any],
    coerce: Callable[[str, Any], Any] = lambda key, value: value,
) -> LabSettings:
    """``settings`` with a profile's ``spawner_override`` merged in, checked like the traits.

    ``coerce(key, value)`` is the trait's own type check (``"2G"`` becomes bytes, a
    wrong type raises); the result then passes :func:`check_settings`.
    """
    current = {key: setting_value(settings, key) for key in override}
    fields = {f.name for f in dataclasses.fields(LabSettings)}
    changes: dict[str, Any] = {}
    extra = dict(settings.extra)
    for key, value in overridden_values(current, override).items():
        value = coerce(key, value)
        if key in EXTRA_SETTINGS:
            extra[key] = value
        elif key in fields:
            if isinstance(getattr(settings, key), tuple) and isinstance(value, list):
                value = tuple(value)
            changes[key] = value
        else:
            raise ValueError(f"{key} is not a lab setting a profile can change.")
    if any(isinstance(share, Mapping) for share in changes.get("cifs_shares", ())):
        changes["cifs_shares"] = cifs_shares(changes["cifs_shares"])
    return check_settings(dataclasses.replace(settings, extra=extra, **changes))
