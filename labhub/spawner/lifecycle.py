"""The steps every lab spawner takes, for Docker and Swarm alike: folders, the lab, readiness, cleanup.

``LabSpawnerMixin`` reads the settings of :class:`~labhub.spawner.settings.LabTraits`
once per spawn into a :class:`~labhub.lab.settings.LabSettings`, merges the chosen
profile into that value, builds the lab with :func:`labhub.lab.build.build_lab` and
leaves only the engine's own work to :class:`~labhub.spawner.docker.LabDockerSpawner` and
:class:`~labhub.spawner.swarm.LabSwarmSpawner`: turning that description into a
container or a service, running the folder helper, and removing what they made.
Each method exists once; the engine classes add hooks, never second copies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from docker.errors import APIError, NotFound
from jupyterhub.utils import random_port
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Bool, Enum, Int, TraitError, Unicode, default, validate

from labhub.cli.image import DEFAULT_IMAGE
from labhub.engines import host_listeners, network
from labhub.engines.base import Engine
from labhub.hub import identity
from labhub.lab import build, engine_limits, folder_task, folders, mounts, names, packages, teams
from labhub.lab.build import OVERRIDE_SETTINGS, build_lab, fixed_overrides
from labhub.lab.gateway import GatewayUsernameError
from labhub.lab.model import Lab, LabSpecError, Overrides
from labhub.lab.names import folder_helper_name, lab_object_name, user_folder_name
from labhub.lab.settings import LabSettings, check_settings, merge_profile
from labhub.profiles.rules import Profile
from labhub.spawner.settings import LabSpawnError, LabTraits, settings_from_traits
from labhub.usage import metrics

__all__ = ["OVERRIDE_SETTINGS", "LabSpawnerMixin", "check_overrides"]

#: Connections the Docker client keeps to the engine (docker-py's default pool size).
DOCKER_CLIENT_CONNECTIONS = 10

#: Where a host-network lab listens: the host's loopback, never its public interfaces.
LOOPBACK = "127.0.0.1"

_VOLUME_PATH = re.compile(r"/volumes/([^/\s]+)/_data")


def mount_failure_message(error: str) -> str | None:
    """One sentence for a user whose lab could not mount a volume, or None for other errors.

    Docker's own message repeats the mount data, CIFS password included; only the
    volume name and the kernel's last word (e.g. "no such device") are kept.
    """
    lowered = error.lower()
    if (
        "error while mounting volume" not in lowered
        and "failed to mount local volume" not in lowered
    ):
        return None
    found = _VOLUME_PATH.search(error)
    volume = found.group(1) if found else "a network share"
    reason = error.rsplit(": ", 1)[-1].strip().rstrip(".")
    if "=" in reason or len(reason) > 80:
        reason = "the mount was refused"
    return (
        f"Your lab could not mount its network share volume {volume} ({reason}); "
        "nothing was started. Try again later or tell the lab admin."
    )


def redact_output(output: str, secrets: list[str]) -> str:
    """``output`` with every secret value replaced, so a crash report leaks no token."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 6:
            output = output.replace(secret, "[secret]")
    return output


def early_exit_message(exit_code: int | None, oom: bool, output: str) -> str:
    """One sentence for a user whose lab stopped while starting, saying what kind of failure it was."""
    lowered = output.lower()
    if oom or exit_code == 137:
        kind = "it ran out of memory; ask the lab admin for a larger memory limit"
    elif (
        exit_code in (126, 127)
        or "executable file not found" in lowered
        or ("jupyterhub-singleuser" in lowered and "not found" in lowered)
    ):
        kind = "its image cannot run the Jupyter single-user server (jupyterhub-singleuser)"
    elif "permissionerror" in lowered or "permission denied" in lowered:
        kind = "the lab user may not write where the image expects (see the hub log)"
    elif "mount" in lowered and ("refused" in lowered or "failed" in lowered):
        kind = "a share refused to mount"
    else:
        kind = f"its server exited with code {exit_code}"
    return (
        f"Your lab stopped while starting: {kind}; nothing was kept, and the hub log "
        "has its last output for the lab admin."
    )


#: Readiness polls: this often per lab starting at the same time, never less often than the cap.
READINESS_STEP = 0.02
READINESS_CAP = 0.5
#: ...and never more often than this share of the time the lab has taken so far.
READINESS_SHARE = 0.02


def readiness_interval(labs_starting: int, waited: float = 0.0) -> float:
    """Seconds between readiness polls of one lab while ``labs_starting`` labs start at once.

    A lab is seen at most 20 ms per starting lab, or 2% of its own start time, after it
    answers; a slow image is not asked 50 times a second for a minute.
    """
    busy = READINESS_STEP * max(1, labs_starting)
    return min(READINESS_CAP, max(busy, READINESS_SHARE * waited))


def check_overrides(settings: LabSettings, translate: Callable[[Lab, Overrides], Any]) -> None:
    """Translate a stand-in lab with the settings' fixed overrides; a wrong one raises in one sentence.

    Callable overrides depend on the user and are checked at each spawn instead.
    """
    stand_in = Lab(
        name="labhub-config-check",
        image=settings.image or "image",
        command=["jupyterhub-singleuser"],
        environment={},
        user="1:1",
        workdir="/",
        mounts=[],
        labels={},
        network=settings.network_name,
        port=8888,
    )
    translate(stand_in, fixed_overrides(settings))


class LabSpawnerMixin(LabTraits):
    """Lab lifecycle shared by LabDockerSpawner and LabSwarmSpawner (mixed in before the engine's spawner)."""

    remove = Bool(
        True,
        config=True,
        help="""Remove the container (or service) when the server stops (throwaway labs).
        Nothing in the container's own filesystem survives; notebooks live in the
        mounted folders.""",
    )

    name_template = Unicode(
        "",
        config=True,
        help="""Container (or service) name template with ``{prefix}``, ``{username}`` (the
        safe folder name) and ``{servername}``. Empty (the default): labhub's naming
        rule, ``{prefix}-{username}`` when that is a valid Swarm service name and a
        readable stem plus a digest otherwise, so no two users or named servers share
        a name on Docker or on Swarm.""",
    )

    network_subnet = Unicode(
        network.DEFAULT_NETWORK_SUBNET,
        config=True,
        help="""Private IPv4 subnet of the labs' own network (any ``network_name`` but
        ``host``, ``bridge`` and ``none``). labhub creates that network when it is missing:
        a bridge with ``enable_icc=false``, so a lab reaches the hub (on the subnet's first
        address, the gateway, where configure() binds ``hub_ip``) and the outside world,
        never another lab. An existing network of that name must have this subnet's
        gateway and icc off, or the hub refuses to start.""",
    )
    kernel_transport = Enum(
        ["auto", "ipc", "tcp"],
        default_value="auto",
        config=True,
        help="""How a lab's kernels talk to its server. ``ipc`` uses Unix sockets in the
        lab's own HOME, which no other lab can open; ``tcp`` uses ports on the lab's
        loopback, which with ``network_name = "host"`` is the host's loopback, shared with
        every other lab. ``auto`` (default): ``ipc`` on host networking, ``tcp`` elsewhere
        (on its own network a lab's loopback is its own).""",
    )

    auth_cache_seconds = Int(
        1,
        config=True,
        help="""Seconds a lab keeps the hub's answer about who a visitor is and what they may
        do (the lab's ``HubOAuth.cache_max_age``; JupyterHub's own default is 300). A revoked
        share, a stopped account or a user taken out of a group loses access to the lab's
        HTTP API this long after the hub says so; every lab asks the hub again this often.""",
    )

    docker_api_threads = Int(
        8,
        config=True,
        help="""Docker API calls the hub makes at the same time, for all labs. DockerSpawner
        makes them one at a time (one thread for the whole hub), so when a class logs in
        at once each container start waits for all the others, and a warm-pool login
        waits behind the pool's own refilling. The engine serves calls in parallel; the
        Docker client keeps 10 connections, so more than 10 threads gain nothing.
        1: DockerSpawner's own behaviour.""",
    )

    @validate("auth_cache_seconds")
    def _auth_cache_positive(self, proposal: Any) -> int:
        if proposal.value < 1:
            # HubOAuth reads 0 as "cache forever": a revoked share would never end
            raise ValueError(
                f"auth_cache_seconds must be 1 or more, not {proposal.value}: "
                "0 would make labs trust a visitor's access forever."
            )
        return proposal.value

    @validate("docker_api_threads")
    def _docker_api_threads_in_range(self, proposal: Any) -> int:
        if not 1 <= proposal.value <= DOCKER_CLIENT_CONNECTIONS:
            raise ValueError(
                f"docker_api_threads must be between 1 and {DOCKER_CLIENT_CONNECTIONS} "
                f"(the Docker client's connections), not {proposal.value}."
            )
        return proposal.value

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The threads every Docker API call of this hub runs in (one pool per spawner class)."""
        cls = type(self)
        if cls._executor is None:
            cls._executor = ThreadPoolExecutor(
                self.docker_api_threads, thread_name_prefix="labhub-docker"
            )
        return cls._executor

    @default("network_name")
    def _default_network_name(self) -> str:
        return network.DEFAULT_NETWORK

    @default("image")
    def _default_image(self) -> str:
        # labhub's own image (``labhub build-image``), the one configure() writes too;
        # dockerspawner's default comes from a registry this lab may not reach
        return DEFAULT_IMAGE

    @default("prefix")
    def _default_prefix(self) -> str:
        # the hub's identity in every name: two hubs on one engine never touch each other's objects
        return names.hub_prefix(identity.of_settings(getattr(self.user, "settings", None)))

    @property
    def lab_kernel_transport(self) -> str:
        """``ipc`` or ``tcp``: :attr:`kernel_transport` with ``auto`` decided by the network."""
        if self.kernel_transport == "auto":
            return "ipc" if self.uses_host_network else "tcp"
        return self.kernel_transport

    def get_args(self) -> list[str]:
        args = super().get_args()
        if self.lab_kernel_transport == "ipc":
            # host networking shares loopback: kernel TCP ports would be open to every lab
            args.append("--KernelManager.transport=ipc")
        # a guest whose share is revoked is cut off once the lab stops trusting its cached answer
        args.append(f"--HubOAuth.cache_max_age={self.auth_cache_seconds}")
        return args

    @default("object_name")
    def _object_name_default(self) -> str:
        # DockerSpawner re-renders the name through this method when the image changes
        if self.user is None:
            return ""  # a spawner built only to read the settings (the hub's start-up check)
        if self.name_template:
            return self._render_templates(self.name_template)
        return lab_object_name(self.prefix, self.user.name, getattr(self, "name", "") or "")

    def template_namespace(self) -> dict[str, str]:
        # one naming rule for folders, volumes and admin templates: the safe folder name
        namespace = super().template_namespace()
        namespace["username"] = namespace["safe_username"] = self.lab_folder_name
        namespace["servername"] = self.escape(getattr(self, "name", "") or "").lower()
        return namespace

    # Every mount goes through the lab description; DockerSpawner's own binds are not used.
    @property
    def volume_binds(self) -> dict:
        return {}

    @property
    def volume_mount_points(self) -> list:
        return []

    @property
    def mounts(self) -> list:
        return []

    @property
    def uses_host_network(self) -> bool:
        return self.network_name == "host"

    def host_listen_ip(self) -> str:
        """Where a host-network lab listens: the host's loopback, never its public interfaces."""
        return LOOPBACK

    @property
    def lab_folder_name(self) -> str:
        """This user's safe folder name, the one used for every path and Docker name."""
        return user_folder_name(self.user.name)

    # --- the settings of this spawn ------------------------------------------------------

    _spawn_settings: LabSettings | None = None
    _lab_profile: Profile | None = None
    #: ``image`` when this spawn's settings were read; DockerSpawner may set another later
    _image_read: str | None = None

    def settings_for(self, profile: Profile | None = None) -> LabSettings:
        """The settings read from the traits, with ``profile``'s overrides merged in as data.

        A profile value the setting cannot take is one sentence for the user and the admin.
        """
        settings = settings_from_traits(self)
        if profile is None or not profile.spawner_override:
            return settings

        def coerce(key: str, value: Any) -> Any:
            # the trait's own type check ("2G" becomes bytes); nothing is set on the spawner
            trait = self.traits().get(key)
            if trait is None:
                raise ValueError(f"{type(self).__name__} has no setting {key}")
            if value is None and trait.allow_none:
                return value
            try:
                return trait.validate(self, value)
            except (TraitError, ValueError, TypeError) as err:
                raise LabSpawnError(
                    f"Profile {profile.slug!r} sets {key} to a value it cannot take ({err}); "
                    "ask the lab admin to fix profile_list."
                ) from None

        try:
            return merge_profile(settings, profile.spawner_override, coerce)
        except (ValueError, TypeError) as err:
            raise LabSpawnError(
                f"Profile {profile.slug!r} sets a value it cannot take ({err}); "
                "ask the lab admin to fix profile_list."
            ) from None

    def use_lab_profile(self, profile: Profile | None) -> LabSettings:
        """Read this spawn's settings once, ``profile`` merged in; every later step uses them."""
        self._lab_profile = profile
        self._spawn_settings = None
        return self.lab_settings()

    def lab_settings(self) -> LabSettings:
        """This spawn's settings (the traits', with the chosen profile merged in), read once."""
        if self._spawn_settings is None:
            self._image_read = self.image
            self._spawn_settings = self.settings_for(self._lab_profile)
        return self._spawn_settings

    def lab_image(self) -> str:
        """This spawn's image: one DockerSpawner took from the user's options, else the settings'."""
        settings = self.lab_settings()
        if self.image != self._image_read:
            return self.image  # allowed_images: DockerSpawner's start sets it after the read
        return settings.image

    async def pull_image(self, image: str) -> None:
        # DockerSpawner pulls its image trait; this spawn's image may be its profile's
        await super().pull_image(self.lab_image() if image == self._image_read else image)

    # --- spawn progress -----------------------------------------------------

    _lab_progress: list[dict[str, Any]] | None = None

    def reset_progress(self) -> None:
        """Forget the previous spawn's steps; called at the start of every spawn."""
        self._lab_progress = []

    def report_progress(self, percent: int, message: str) -> None:
        """Add a step to what the user sees on the spawn-pending page."""
        if self._lab_progress is None:
            self._lab_progress = []
        self._lab_progress.append({"progress": percent, "message": message})

    async def progress(self):
        """Yield the lab's spawn steps as they happen; the hub stops reading when the spawn ends."""
        sent = 0
        while True:
            events = self._lab_progress or []
            while sent < len(events):
                yield events[sent]
                sent += 1
            await asyncio.sleep(0.1)

    # --- the description -------------------------------------------------------------

    def lab_gpu_ids(self) -> tuple[str, ...]:
        """The GPU ids this lab's container sees; none unless the spawner holds GPUs."""
        return ()

    def resolved_settings(self) -> LabSettings:
        """This spawn's settings for this user: ``environment`` callables called, the image chosen."""
        settings = self.lab_settings()
        image = self.lab_image()
        if image != settings.image:
            settings = dataclasses.replace(settings, image=image)
        if not any(callable(v) for v in settings.environment.values()):
            return settings
        environment = {k: v(self) if callable(v) else v for k, v in settings.environment.items()}
        return dataclasses.replace(settings, environment=environment)

    async def describe_lab(self) -> Lab:
        """This user's lab as plain data: computed once per spawn, translated by the engine class."""
        settings = self.resolved_settings()
        try:
            return build_lab(
                settings,
                self.user.name,
                name=self.object_name,
                command=list(await self.get_command()),
                hub_environment=self.get_env(),
                port=self.port,
                default_url=self.format_string(settings.default_url)
                if settings.default_url
                else "",
                cifs_credentials=await self.lab_cifs_credentials(settings),
                profile=self._lab_profile,
                gpu_ids=self.lab_gpu_ids(),
                hub_assigns_gpus=self.hub_assigns_gpus,
                team_names=self._lab_teams,
            )
        except mounts.MountConfigError as err:
            # a password or name no mount option can carry: the user reads why, nothing starts
            raise LabSpawnError(str(err)) from None

    #: False where the engine, not the hub, assigns device ids (Swarm's generic resources).
    hub_assigns_gpus = True

    async def lab_overrides(self) -> Overrides:
        """The admin's ``extra_*`` settings, callables resolved and ``{username}`` filled in."""
        extra = self.lab_settings().extra
        values = {}
        for setting, trait in OVERRIDE_SETTINGS.items():
            value = self._eval_if_callable(extra.get(trait) or {})
            if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
                value = await value
            values[setting] = self._render_templates(value or {})
        return Overrides(**values)

    def check_lab_config(self) -> None:
        """Check the settings and a stand-in lab with the fixed overrides: a wrong one stops the hub.

        A setting the engine cannot honour is refused too (:mod:`labhub.lab.engine_limits`).
        """
        engine = engine_limits.engine_of(type(self))
        if engine is not None:
            given = engine_limits.given_settings(self, engine_limits.CANNOT_HONOUR[engine])
            refusal = engine_limits.refusal(engine, given)
            if refusal:
                raise LabSpecError(refusal)
        check_overrides(check_settings(settings_from_traits(self)), self.translate_lab)

    # --- the engine ------------------------------------------------------------------

    _engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """Where this spawner's labs run (:class:`~labhub.engines.base.Engine`), made once."""
        if self._engine is None:
            self._engine = self.make_engine()
        return self._engine

    def make_engine(self) -> Engine:
        """The engine object of this spawner class; LabDockerSpawner and LabSwarmSpawner provide it."""
        raise NotImplementedError

    def translate_lab(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        """The engine's create arguments for ``lab``."""
        return self.engine.translate(lab, overrides)

    async def create_object(self) -> dict[str, Any]:
        """Create the user's container or service from the one lab description."""
        try:
            lab = await self.describe_lab()
            return await self.create_lab_object(lab, await self.lab_overrides())
        except (LabSpecError, GatewayUsernameError) as err:
            self.log.error("Lab of %s cannot be created: %s", self.user.name, err)
            raise LabSpawnError(str(err)) from None

    async def create_lab_object(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        """Translate ``lab`` for the engine and create it."""
        return await self.engine.create(lab, overrides)

    async def remove_lab_object(self) -> None:
        """Remove the container or service, running or not."""
        await self.engine.remove(self.object_id)

    # --- folders ---------------------------------------------------------------------

    def folder_job(self) -> folder_task.FolderJob:
        """What the folder helper must create for this user, from the settings alone."""
        settings = self.lab_settings()
        demo = settings.demo_notebooks_dir
        return folder_task.FolderJob(
            folder=build.personal_folder(settings, self.user.name),
            uid=settings.lab_uid,
            gid=settings.lab_gid,
            personal_root=settings.personal_notebooks_dir,
            shared_root=settings.shared_notebooks_dir,
            demo_dir=demo if demo and folder_task.is_dir(demo) else "",
        )

    async def run_folder_helper(self, job: folder_task.FolderJob) -> None:
        """Create the folder with a one-shot root helper of the lab image on the engine."""
        await self.engine.run_folder_helper(
            job,
            image=self.lab_image(),
            name=folder_helper_name(self.object_name),
            owner=self.lab_folder_name,
            # placed like the user's lab, whose profile may place it elsewhere
            placement=list(self.lab_settings().placement_constraints),
        )

    async def prepare_lab_folders(self) -> bool:
        """Create the lab folders and this user's folder (off the event loop); True if it was new."""
        settings = self.lab_settings()
        if not settings.prepare_folders:
            return False
        self.report_progress(10, "Preparing your notebook folder")
        if folder_task.uses_task(settings.folder_creation, settings.lab_uid):
            try:
                await self.run_folder_helper(self.folder_job())
                await self.prepare_package_folder()
            except folder_task.FolderHelperError as err:
                self.log.error("Folder helper for %s failed: %s", self.user.name, err)
                raise LabSpawnError(str(err)) from None
            return False
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None,
                folders.ensure_lab_folders,
                settings.personal_notebooks_dir,
                settings.shared_notebooks_dir,
                settings.lab_uid,
                settings.lab_gid,
            )
            new = await loop.run_in_executor(
                None,
                folders.ensure_personal_folder,
                build.personal_folder(settings, self.user.name),
                settings.lab_uid,
                settings.lab_gid,
                settings.demo_notebooks_dir or None,
            )
            await self.prepare_package_folder()
            return new
        except folders.LabFolderError as err:
            self.log.error("Lab folder for %s not ready: %s", self.user.name, err)
            raise LabSpawnError(str(err)) from None

    #: The groups whose team folders this spawn mounts (chosen and made by prepare_team_folders).
    _lab_teams: tuple[str, ...] = ()

    def user_group_names(self) -> list[str]:
        """The names of this user's hub groups as the hub holds them now (directory groups after login)."""
        return [group.name for group in getattr(self.user, "groups", None) or ()]

    async def prepare_team_folders(self) -> tuple[str, ...]:
        """Choose this spawn's team folders from the user's groups now and make them; return the teams.

        A group refused by name, or whose folder cannot be made, is left out: the lab
        starts without it, and the user reads why on the spawn page.
        """
        settings = self.lab_settings()
        if not settings.team_folders:
            return ()
        plan = teams.plan_teams(settings.team_folders, self.user_group_names())
        ready = []
        for group in plan.teams:
            try:
                if settings.prepare_folders:
                    await self.make_team_folder(settings, group)
                ready.append(group)
            except (folders.LabFolderError, folder_task.FolderHelperError) as err:
                self.report_team_refusal(group, f"Team {group!r} gets no folder in this lab: {err}")
        for group, sentence in plan.refused:
            self.report_team_refusal(group, sentence)
        if ready:
            self.report_progress(20, f"Team folders: {', '.join(ready)}")
        return tuple(ready)

    def report_team_refusal(self, group: str, sentence: str) -> None:
        """Tell the user (spawn page) and the admin (hub log) which team folder the lab lacks."""
        self.log.warning("Lab of %s starts without team %r: %s", self.user.name, group, sentence)
        self.report_progress(20, sentence)

    async def make_team_folder(self, settings: LabSettings, group: str) -> None:
        """Create ``group``'s folder (and the teams folder above it) as the personal folders are made."""
        folder = teams.team_folder(settings.lab_root, group)
        root = teams.teams_root(settings.lab_root)
        if folder_task.uses_task(settings.folder_creation, settings.lab_uid):
            await self.run_folder_helper(
                folder_task.FolderJob(
                    folder=folder,
                    uid=settings.lab_uid,
                    gid=settings.lab_gid,
                    personal_root=root,
                    shared_root=settings.shared_notebooks_dir,
                    folder_mode=folders.TEAM_MODE,
                )
            )
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            folders.ensure_lab_folders,
            root,
            settings.shared_notebooks_dir,
            settings.lab_uid,
            settings.lab_gid,
        )
        await loop.run_in_executor(
            None, folders.ensure_team_folder, folder, settings.lab_uid, settings.lab_gid
        )

    async def prepare_package_folder(self) -> None:
        """Create this user's package folder (owner lab_uid, 0700) the way notebook folders are."""
        settings = self.lab_settings()
        if not settings.persistent_packages:
            return
        folder = build.packages_folder(settings, self.user.name)
        if folder_task.uses_task(settings.folder_creation, settings.lab_uid):
            await self.run_folder_helper(
                folder_task.FolderJob(
                    folder=folder,
                    uid=settings.lab_uid,
                    gid=settings.lab_gid,
                    personal_root=settings.packages_dir,
                    shared_root=settings.shared_notebooks_dir,
                    subfolders=packages.user_site_folders(),
                )
            )
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            folders.ensure_lab_folders,
            settings.packages_dir,
            settings.shared_notebooks_dir,
            settings.lab_uid,
            settings.lab_gid,
        )
        await loop.run_in_executor(
            None,
            folders.ensure_personal_folder,
            folder,
            settings.lab_uid,
            settings.lab_gid,
            None,
            packages.user_site_folders(),
        )

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        if self.uses_host_network:
            # A host-network lab shares the host's ports: pick a free one, listen on loopback only.
            self.port = self.reserve_host_port()
            self.ip = self.host_listen_ip()
        self.reset_progress()
        if "\x00" in self.user.name:
            # the engine refuses a NUL in JUPYTERHUB_USER only after creating the container
            raise LabSpawnError(
                "This username contains a NUL character, which a lab container cannot carry; "
                "ask the lab admin to rename the user."
            )
        began = time.monotonic()
        await self.prepare_lab_folders()
        self._lab_teams = await self.prepare_team_folders()
        if self.lab_settings().prepare_folders:
            metrics.FOLDER_PREPARATION.observe(time.monotonic() - began)
        shares = self.lab_settings().cifs_shares
        if shares:
            names = ", ".join(share.name for share in shares)
            self.report_progress(30, f"Mounting Windows shares: {names}")
        if network.is_labhub_network(self.network_name):
            await self.ensure_lab_network()
        self.report_progress(50, "Starting your lab container")
        try:
            ip_port = await super().start()
        except APIError as err:
            explanation = str(err.explanation or err)
            message = mount_failure_message(explanation)
            if message is None and "executable file not found" in explanation:
                self.log.error("Lab of %s cannot start: %s", self.user.name, explanation)
                message = early_exit_message(127, False, explanation)
            await self._discard_failed_start()
            if message:
                self.log.error("Spawn of %s failed: %s", self.user.name, message)
                raise LabSpawnError(message) from None
            raise
        self.report_progress(80, "Container running; waiting for JupyterLab to answer")
        await self.wait_for_server(*ip_port)
        return ip_port

    #: Labs of this hub process waiting for their server to answer (readiness polls share the hub).
    _labs_waiting_for_server = 0

    #: Host ports this hub process has given to host-network labs that start or run. A port
    #: is free for random_port() until its lab binds it, so in a burst two labs could get
    #: the same one; the second would be refused as a squatter (it was another lab).
    _host_ports_in_use: set[int] = set()

    def reserve_host_port(self) -> int:
        """A free loopback port that no other lab of this hub has been given."""
        taken = LabSpawnerMixin._host_ports_in_use
        self.release_host_port()
        for _ in range(100):
            port = random_port()
            if port not in taken:
                taken.add(port)
                return port
        raise LabSpawnError(
            "The hub found no free port for your lab on this host; try again in a minute, "
            "and tell the lab admin if this repeats."
        )

    def release_host_port(self) -> None:
        """Give this lab's host port back (its lab stopped, failed, or was never started)."""
        if self.uses_host_network and self.port:
            LabSpawnerMixin._host_ports_in_use.discard(self.port)

    async def wait_for_server(self, ip: str, port: int) -> None:
        """Return as soon as the lab answers HTTP, or fail fast if it stops.

        The hub polls a new server with exponential backoff (waits of up to 5 s), so a
        lab ready at 3.1 s is often seen at 6 s. Polling here every 20 ms while one lab
        starts finds it within a few milliseconds (a refused connection on the same
        host costs well under a millisecond); the wait grows with the number of labs
        starting at once and with the time this one has taken (see
        :func:`readiness_interval`), so a burst or a slow image does not flood the
        hub's event loop. A lab that exits while starting is reported at
        once, with its exit status, instead of after ``http_timeout``.
        """
        if getattr(self, "internal_ssl", False):
            return  # the hub's own check knows the certificates
        client = AsyncHTTPClient()
        url = f"http://{ip}:{port}{self.server.base_url if self.server else '/'}api"
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + self.http_timeout
        next_state_check = loop.time() + 1.0
        LabSpawnerMixin._labs_waiting_for_server += 1
        try:
            while loop.time() < deadline:
                try:
                    response = await client.fetch(
                        url, raise_error=False, connect_timeout=1, request_timeout=2
                    )
                    if response.code and response.code < 500 and response.code != 599:
                        if self.uses_host_network:
                            await self.verify_host_listener(port)
                        return
                except (OSError, HTTPClientError):
                    # not listening yet: refused, or (a new address on a busy bridge, no ARP
                    # answer yet) a connection that times out; raise_error=False returns
                    # HTTP errors but still raises a timeout
                    pass
                if loop.time() >= next_state_check:
                    next_state_check = loop.time() + 1.0
                    state = await self.poll()
                    if state is not None:
                        await self._report_early_exit(state)
                await asyncio.sleep(
                    readiness_interval(
                        LabSpawnerMixin._labs_waiting_for_server, loop.time() - began
                    )
                )
        finally:
            LabSpawnerMixin._labs_waiting_for_server -= 1

    # --- the network ---------------------------------------------------------------

    async def ensure_lab_network(self) -> None:
        """Create the labs' isolated network if it is missing (an admin may have removed it)."""
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(
                    None,
                    network.ensure_lab_network,
                    self.client,
                    self.network_name,
                    self.network_subnet,
                ),
                60,
            )
        except network.LabNetworkError as err:
            self.log.error("Network of %s's lab: %s", self.user.name, err)
            raise LabSpawnError(str(err)) from None

    def prepare_lab_network_at_start(self) -> None:
        """At hub start, before the hub binds to the gateway: make sure the network exists."""
        if network.is_labhub_network(self.network_name):
            network.ensure_lab_network(self.client, self.network_name, self.network_subnet)

    async def lab_container_id(self) -> str | None:
        """The id of the container running this lab on the engine the hub talks to."""
        return await self.engine.container_of(self.object_id)

    async def verify_host_listener(self, port: int) -> None:
        """Refuse a host-network port that answers but is not held by this lab's own processes.

        On the host network any local program can bind the port the hub picked before the
        lab does. The check asks the lab's container which ports its processes listen on;
        nothing is sent to the port itself, so a squatter learns no token.
        """
        container = await self.lab_container_id()
        if not container:
            self.log.warning(
                "labhub: cannot check who listens on port %s for %s (the lab runs on another node)",
                port,
                self.user.name,
            )
            return
        try:
            ports = await asyncio.get_running_loop().run_in_executor(
                None, host_listeners.container_listeners, container
            )
        except host_listeners.Unknown:
            # the hub cannot see the lab's processes from here: ask inside the lab
            settings = self.lab_settings()
            execution = await self.docker(
                "exec_create",
                container,
                network.listener_command(),
                user=f"{settings.lab_uid}:{settings.lab_gid}",
            )
            output = await self.docker("exec_start", execution["Id"])
            ports = network.parse_listener_report(output.decode("utf-8", "replace"))
        if port not in ports:
            message = network.squatter_message(port)
            self.log.error(
                "Spawn of %s refused: %s (lab listens on %s)", self.user.name, message, ports
            )
            await self._discard_failed_start()
            raise LabSpawnError(message)

    async def _report_early_exit(self, state: Any) -> None:
        """Log why a lab stopped while starting (exit code, last output, secrets hidden), then fail."""
        try:
            exit_code, oom, output = await self.lab_exit_report()
        except Exception as err:  # the report is a courtesy; the failure below is what matters
            exit_code, oom, output = None, False, f"(no output: {err})"
        output = redact_output(output, self._secrets())
        self.log.error(
            "Lab of %s stopped while starting (exit code %s%s); its last output:\n%s",
            self.user.name,
            exit_code,
            ", out of memory" if oom else "",
            output or "(none)",
        )
        await self._discard_failed_start()
        raise LabSpawnError(early_exit_message(exit_code, oom, output))

    def _secrets(self) -> list[str]:
        env = build.lab_environment(self.lab_settings(), self.user.name, self.get_env())
        return [
            v for k, v in env.items() if v and ("TOKEN" in k or "SECRET" in k or "PASSWORD" in k)
        ]

    async def lab_exit_report(self) -> tuple[int | None, bool, str]:
        """Exit code, out-of-memory flag and last output of a stopped lab."""
        report = await self.engine.exit_report(self.object_id)
        return report.exit_code, report.oom, report.output

    async def _discard_failed_start(self) -> None:
        """Remove whatever a failed start left behind: the lab object and the user's share volumes."""
        if self.object_id:
            await self.remove_lab_object()
            self.object_id = ""
        await self.remove_share_volumes()
        self.release_host_port()

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.object_id and self.uses_host_network:
            # the port was picked at spawn time; a restarted hub must find the server on it again
            state["host_port"] = self.port
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if state.get("host_port"):
            self.port = int(state["host_port"])
            self.ip = self.host_listen_ip()
            LabSpawnerMixin._host_ports_in_use.add(self.port)  # a restarted hub's running lab

    async def host_network_address(self) -> str:
        """The address the hub connects to for a host-network lab."""
        return await self.engine.host_address(self.object_id, self.ip)

    async def get_ip_and_port(self) -> tuple[str, int]:
        if self.uses_host_network:
            return await self.host_network_address(), self.port
        return await super().get_ip_and_port()

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        await self.remove_share_volumes()
        self.release_host_port()

    async def poll(self) -> int | str | None:
        """None while the lab runs; otherwise its exit status, after removing what it left.

        The hub calls ``stop()`` only for a server that still runs, so a lab that died
        (killed from outside, engine restarted) would leave its stopped container and
        its share volumes, passwords included, until the user's next start.
        """
        status = await super().poll()
        if status is not None and self.remove and not self._spawn_pending:
            await self._discard_failed_start()
        return status

    async def remove_share_volumes(self) -> None:
        """Drop this user's Windows-share volumes, so no password stays in Docker's volume store."""
        for name in self.cifs_volume_names():
            try:
                await self.docker("remove_volume", name, force=True)
            except NotFound:
                pass
            except APIError as err:
                self.log.warning("Could not remove share volume %s: %s", name, err.explanation)

    # --- settings turned into mounts -------------------------------------------------

    async def cifs_credentials(self, share: mounts.CifsShare) -> mounts.CifsCredentials | None:
        """Credentials for ``share``: from its file, from the user's auth_state, or none (guest)."""
        if share.credentials == "guest":
            return None
        if share.credentials == "file":
            loop = asyncio.get_running_loop()
            try:
                text = await loop.run_in_executor(None, _read_text, share.credentials_file)
            except OSError as err:
                raise LabSpawnError(
                    f"The credentials file of Windows share {share.name!r} cannot be read "
                    f"({err.strerror}); ask the lab admin to check {share.credentials_file}."
                ) from None
            return mounts.parse_credentials_file(text)
        auth_state = await self.user.get_auth_state() or {}
        password = auth_state.get("password")
        if not password:
            raise LabSpawnError(
                f"Windows share {share.name!r} needs your login password, which the hub did not "
                "keep; log out and in again, or ask the admin to enable auth_state."
            )
        return mounts.CifsCredentials(
            username=auth_state.get("login_name") or self.user.name,
            password=password,
            domain=auth_state.get("domain", ""),
        )

    async def lab_cifs_credentials(
        self, settings: LabSettings
    ) -> dict[str, mounts.CifsCredentials | None]:
        """Each Windows share's credentials for this user, by share name."""
        return {share.name: await self.cifs_credentials(share) for share in settings.cifs_shares}

    def cifs_volume_names(self) -> list[str]:
        settings = self.lab_settings()
        return [
            mounts.cifs_volume_name(settings.prefix, share, self.user.name)
            for share in settings.cifs_shares
        ]


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()
