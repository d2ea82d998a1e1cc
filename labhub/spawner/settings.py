"""The lab's settings as traits, shared by Docker and Swarm, and the one place they are read.

``LabTraits`` holds the traits an admin sets (folders, uid/gid, shares, packages,
the gateway) with their help texts; their checks are the pure ones of
:mod:`labhub.lab.settings`. :func:`settings_from_traits` reads every trait that
decides a lab, once per spawn, into a frozen :class:`~labhub.lab.settings.LabSettings`.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from labhub.hub.options import (
    DEFAULT_GATEWAY_CONNECT_TIMEOUT,
    DEFAULT_GATEWAY_REQUEST_TIMEOUT,
    DEFAULT_LAB_GID,
    DEFAULT_LAB_ROOT,
    DEFAULT_LAB_UID,
    DEFAULT_UID_STRATEGY,
)
from labhub.lab import settings as checks
from labhub.lab.settings import EXTRA_SETTINGS, LabSettings
from labhub.lab.specs import UID_STRATEGIES
from labhub.paths import share_dir


class LabSpawnError(RuntimeError):
    """A spawn failed for a reason the user and the admin should read; the message is one sentence."""

    @property
    def jupyterhub_message(self) -> str:
        # JupyterHub shows this text on the spawn page and in API errors instead of a generic 500.
        return str(self)


class LabTraits(LoggingConfigurable):
    """The lab's settings shared by LabDockerSpawner and LabSwarmSpawner: traits only, no behaviour."""

    lab_root = Unicode(
        DEFAULT_LAB_ROOT,
        config=True,
        help="""Host folder that holds the lab's notebooks: ``shared_notebooks`` and
        ``personal_notebooks/<user>`` live below it unless set separately. On Swarm,
        storage every node sees (an NFS mount at the same path on every node).""",
    )
    personal_notebooks_dir = Unicode(
        config=True,
        help="""Host folder holding one folder per user (default ``{lab_root}/personal_notebooks``).
        Each user's folder is created before their first container starts, owned by
        ``lab_uid:lab_gid`` with mode 0700.""",
    )
    shared_notebooks_dir = Unicode(
        config=True,
        help="""Host folder the whole team shares (default ``{lab_root}/shared_notebooks``);
        owned by ``lab_uid:lab_gid``, mode 2775 so files keep the lab group.""",
    )

    @default("personal_notebooks_dir")
    def _default_personal(self) -> str:
        return os.path.join(self.lab_root, "personal_notebooks")

    @default("shared_notebooks_dir")
    def _default_shared(self) -> str:
        return os.path.join(self.lab_root, "shared_notebooks")

    @validate("lab_root", "personal_notebooks_dir", "shared_notebooks_dir", "packages_dir")
    def _absolute(self, proposal: Any) -> str:
        return checks.absolute_path(proposal.trait.name, proposal.value)

    personal_mount_path = Unicode(
        "/home/jovyan/work",
        config=True,
        help="Where the user's personal folder appears inside the container (read-write).",
    )
    shared_mount_path = Unicode(
        "/home/jovyan/shared",
        config=True,
        help="Where the team's shared folder appears inside the container (read-write).",
    )
    home_dir = Unicode(
        "/home/jovyan",
        config=True,
        help="HOME inside the container; the single-user server starts there.",
    )
    nb_user = Unicode(
        "jovyan",
        config=True,
        help="The user name inside the container (USER, and NB_USER for docker-stacks images).",
    )
    lab_uid = Int(
        DEFAULT_LAB_UID,
        config=True,
        help="""uid that owns every notebook on the host and runs (or is switched to in) the
        container. Never 0: a lab user must not be root on the host's files.""",
    )
    lab_gid = Int(
        DEFAULT_LAB_GID,
        config=True,
        help="gid of the lab group: owner group of all notebooks, shared folder group-writable for it.",
    )

    @validate("lab_uid", "lab_gid")
    def _not_root(self, proposal: Any) -> int:
        return checks.lab_id(proposal.trait.name, proposal.value)

    uid_strategy = Enum(
        list(UID_STRATEGIES),
        default_value=DEFAULT_UID_STRATEGY,
        config=True,
        help="""How files end up owned by ``lab_uid:lab_gid``. ``direct`` (default) runs the
        container as ``lab_uid:lab_gid`` with HOME set to ``home_dir``; it works with any
        image whose HOME is writable by that uid, including labhub's offline image.
        ``docker-stacks`` starts the container as root with ``NB_UID``, ``NB_GID``,
        ``NB_USER`` and ``CHOWN_HOME`` set; jupyter/docker-stacks images then drop to that
        uid themselves before the server starts.""",
    )
    throwaway_home = Bool(
        True,
        config=True,
        help="""With ``uid_strategy = "direct"``, give the lab a fresh HOME at ``home_dir`` (a
        tmpfs owned by ``lab_uid``, counted in the lab's memory, gone when the container
        goes), so images whose own HOME belongs to another user (docker-stacks images: uid
        1000, mode 0755; plain Python images with no home at all) start. Notebooks are
        unaffected: they are mounted inside it. Turn off only for an image whose HOME
        already belongs to ``lab_uid`` and holds files the lab needs.""",
    )
    lab_read_only_volumes = Dict(
        config=True,
        help="""Extra read-only mounts, ``{host path or volume name: container path}``; for
        example one big conda tree everybody uses and nobody may change. ``{username}``
        is filled in on both sides.""",
    )
    lab_volumes = Dict(
        config=True,
        help="""Extra read-write mounts, ``{host path or volume name: container path}``,
        ``{username}`` filled in. A host path must exist; a volume is created on first use.""",
    )
    volume_driver_options = Dict(
        config=True,
        help="""Driver options for named volumes in ``lab_volumes``/``lab_read_only_volumes``,
        ``{volume name: {option: value}}``, e.g. ``{"team-data": {"type": "nfs", "o":
        "addr=10.0.0.5,nfsvers=4,ro", "device": ":/export/data"}}``. Applied on Docker and
        Swarm alike; ``{username}`` is filled in at every depth.""",
    )
    cifs_shares = List(
        Dict(),
        config=True,
        help="""Windows (CIFS/SMB) shares mounted in every lab, each a dict with ``name``
        (short id), ``device`` (``//server/share/{raw_username}``), ``mount_path``
        (container path), ``credentials`` (``file``: read ``credentials_file``, a
        mount.cifs style file on the hub host; ``auth_state``: the user's own login name
        and password, needs LabAuthenticator's ``store_password`` and auth_state
        encryption; ``guest``), optional ``read_only``, ``file_mode``, ``dir_mode`` and
        ``options`` (extra mount options such as ``vers``). Each becomes a per-user
        Docker ``local`` volume of type cifs owned by the lab uid/gid; credentials go
        only into the volume's driver options, never into the container's environment,
        labels or the logs, and the volume is removed when the server stops.""",
    )

    @validate("cifs_shares")
    def _valid_shares(self, proposal: Any) -> list:
        checks.cifs_shares(proposal.value)
        return proposal.value

    demo_notebooks_dir = Unicode(
        config=True,
        help="""Folder whose files are copied into a user's personal folder when it is
        created (first spawn only; nothing is ever overwritten). Default: labhub's
        bundled ``share/labhub/notebooks``. Set to an empty string for none.""",
    )

    @default("demo_notebooks_dir")
    def _default_demo(self) -> str:
        try:
            return str(share_dir() / "notebooks")
        except FileNotFoundError:
            return ""

    prepare_folders = Bool(
        True,
        config=True,
        help="""Create the lab folders and the user's personal folder on the hub's host
        before the container starts. Turn off only when another system provisions them.""",
    )
    folder_creation = Enum(
        ["hub", "task", "auto"],
        default_value="auto",
        config=True,
        help="""Who creates a user's personal folder before their lab starts. ``hub``: the
        hub itself, on its own view of ``lab_root``. ``task``: a short-lived root helper
        (a container of the lab image, or a Swarm task on the lab's node) with the
        folder's parent mounted; for a hub that is not root or does not see ``lab_root``.
        ``auto``: the hub when it can give files to the lab uid (it runs as root or as
        ``lab_uid``), the helper otherwise. LabSwarmSpawner defaults to ``task``.""",
    )

    # --- users' own packages -------------------------------------------------------

    persistent_packages = Bool(
        True,
        config=True,
        help="""Keep what users install with ``pip install`` / ``%pip install`` across their
        containers. Each user gets a folder under ``packages_dir`` (owned by ``lab_uid``, mode
        0700, never mounted into anyone else's lab, made with the user sites of Python 3.9-3.15
        so a kernel imports its first ``%pip install`` at once), mounted at
        ``/opt/labhub/packages`` (``~/.local`` with ``uid_strategy = "docker-stacks"``, whose
        ``sudo`` drops ``PYTHONUSERBASE``) and made Python's user base (``PYTHONUSERBASE``,
        ``PIP_USER=1``). The image's Python must have its user site on (labhub's images do; a
        plain venv needs ``include-system-site-packages = true``). Off: installs go where
        the image lets them, and are gone with the container.""",
    )
    packages_dir = Unicode(
        config=True,
        help="""Host folder holding one package folder per user (default
        ``{lab_root}/packages``), separate from the notebooks so ``work/`` stays clean. On
        Swarm, storage every node sees, like ``lab_root``.""",
    )

    @default("packages_dir")
    def _default_packages_dir(self) -> str:
        return os.path.join(self.lab_root, "packages")

    # --- remote kernels through Jupyter Enterprise Gateway ----------------------------

    gateway_url = Unicode(
        config=True,
        help="""Base URL of a Jupyter Enterprise Gateway (``https://eg.lab.example:8888``).
        When set, every lab lists and starts its kernels there (e.g. PySpark on the
        cluster) instead of inside the user's container. Empty: local kernels.""",
    )
    gateway_auth_token = Unicode(
        config=True,
        help="""Token the labs send to the gateway. It reaches each lab in its environment
        (that is how Jupyter Server reads it), so the lab's user can see it: give the
        gateway a token meant for lab users, not an admin secret. It is one token for
        everybody: the gateway cannot tell users apart, and KERNEL_USERNAME proves nothing
        (docs/gateway.md).""",
    )
    gateway_request_timeout = Float(
        DEFAULT_GATEWAY_REQUEST_TIMEOUT,
        config=True,
        help="""Seconds a lab waits for one gateway request. Starting a kernel on a busy
        cluster can take a while; a gateway that is down is reported after
        ``gateway_connect_timeout``, not this.""",
    )
    gateway_connect_timeout = Float(
        DEFAULT_GATEWAY_CONNECT_TIMEOUT,
        config=True,
        help="Seconds a lab waits to connect to the gateway before saying it is unreachable.",
    )
    gateway_validate_cert = Bool(
        True,
        config=True,
        help="Verify the gateway's TLS certificate (turn off only for a test gateway).",
    )
    gateway_ca_file = Unicode(
        config=True,
        help="CA bundle, inside the lab image, that signed the gateway's certificate.",
    )

    @validate("gateway_url")
    def _valid_url(self, proposal: Any) -> str:
        return checks.gateway_url(proposal.value)


def settings_from_traits(spawner: Any) -> LabSettings:
    """Every setting that decides ``spawner``'s labs, read from its traits once, as one value.

    The only place traits are read for building a lab. Needs no user: the hub's
    start-up check reads a spawner built without one. Traits only one engine has
    (Swarm's placement, Docker's links) read as empty on the other.
    """

    def trait(name: str, fallback: Any = None) -> Any:
        return getattr(spawner, name, fallback)

    return LabSettings(
        lab_root=spawner.lab_root,
        personal_notebooks_dir=spawner.personal_notebooks_dir,
        shared_notebooks_dir=spawner.shared_notebooks_dir,
        packages_dir=spawner.packages_dir,
        demo_notebooks_dir=spawner.demo_notebooks_dir,
        prepare_folders=spawner.prepare_folders,
        folder_creation=spawner.folder_creation,
        persistent_packages=spawner.persistent_packages,
        personal_mount_path=spawner.personal_mount_path,
        shared_mount_path=spawner.shared_mount_path,
        home_dir=spawner.home_dir,
        nb_user=spawner.nb_user,
        lab_uid=spawner.lab_uid,
        lab_gid=spawner.lab_gid,
        uid_strategy=spawner.uid_strategy,
        throwaway_home=spawner.throwaway_home,
        lab_read_only_volumes=dict(spawner.lab_read_only_volumes),
        lab_volumes=dict(spawner.lab_volumes),
        volume_driver_options=dict(spawner.volume_driver_options),
        cifs_shares=checks.cifs_shares(spawner.cifs_shares),
        gateway_url=spawner.gateway_url,
        gateway_auth_token=spawner.gateway_auth_token,
        gateway_request_timeout=spawner.gateway_request_timeout,
        gateway_connect_timeout=spawner.gateway_connect_timeout,
        gateway_validate_cert=spawner.gateway_validate_cert,
        gateway_ca_file=spawner.gateway_ca_file,
        image=spawner.image,
        environment=dict(spawner.environment or {}),
        default_url=spawner.default_url or "",
        mem_limit=spawner.mem_limit,
        mem_guarantee=spawner.mem_guarantee,
        cpu_limit=spawner.cpu_limit,
        cpu_guarantee=spawner.cpu_guarantee,
        links=dict(trait("links") or {}),
        network_name=trait("network_name", ""),
        port=spawner.port,
        host_ip=trait("host_ip", "127.0.0.1"),
        use_internal_ip=bool(trait("use_internal_ip", False)),
        prefix=trait("prefix", "labhub"),
        remove=bool(trait("remove", True)),
        placement_constraints=tuple(trait("placement_constraints") or ()),
        placement_preferences=tuple(trait("placement_preferences") or ()),
        extra={name: trait(name) or {} for name in EXTRA_SETTINGS if spawner.has_trait(name)},
        gpu_request=trait("gpu_request", "device_requests"),
    )
