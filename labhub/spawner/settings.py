"""The lab's settings, shared by Docker and Swarm: the traits an admin sets and the values they give.

``LabSettingsMixin`` holds the traits (folders, uid/gid, shares, demo notebooks)
with their help texts and validation, and the values derived from them for one
user (folder name, layout, run-as identity). The steps of a spawn are in
:mod:`labhub.spawner.lifecycle`.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, Dict, Enum, Int, List, Unicode, default, validate

from labhub.hub.options import (
    DEFAULT_LAB_GID,
    DEFAULT_LAB_ROOT,
    DEFAULT_LAB_UID,
    DEFAULT_UID_STRATEGY,
)
from labhub.lab import mounts
from labhub.lab.names import user_folder_name
from labhub.lab.specs import UID_STRATEGIES, run_as
from labhub.paths import share_dir
from labhub.spawner.gateway import GatewaySettingsMixin
from labhub.spawner.package_settings import PackageSettingsMixin


class LabSpawnError(RuntimeError):
    """A spawn failed for a reason the user and the admin should read; the message is one sentence."""

    @property
    def jupyterhub_message(self) -> str:
        # JupyterHub shows this text on the spawn page and in API errors instead of a generic 500.
        return str(self)


class LabSettingsMixin(GatewaySettingsMixin, PackageSettingsMixin):
    """Lab semantics shared by LabDockerSpawner and LabSwarmSpawner."""

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

    @validate("lab_root", "personal_notebooks_dir", "shared_notebooks_dir")
    def _absolute(self, proposal: Any) -> str:
        value = proposal.value
        if not os.path.isabs(value):
            raise ValueError(f"{proposal.trait.name} must be an absolute host path, not {value!r}.")
        return os.path.normpath(value)

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
        if proposal.value <= 0:
            raise ValueError(
                f"{proposal.trait.name} must be a positive id, not {proposal.value}: "
                "lab files must not belong to root."
            )
        return proposal.value

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

    _parsed_shares: tuple[mounts.CifsShare, ...] = ()

    @validate("cifs_shares")
    def _valid_shares(self, proposal: Any) -> list:
        names = set()
        parsed = []
        for raw in proposal.value:
            share = mounts.parse_cifs_share(raw)
            if share.name in names:
                raise ValueError(f"Two cifs_shares are named {share.name!r}; names must be unique.")
            names.add(share.name)
            parsed.append(share)
        self._parsed_shares = tuple(parsed)
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

    # --- derived values -----------------------------------------------------

    @property
    def lab_folder_name(self) -> str:
        """This user's safe folder name, the one used for every path and Docker name."""
        return user_folder_name(self.user.name)

    @property
    def personal_folder(self) -> str:
        """The host path of this user's personal folder."""
        return mounts.personal_folder(self.personal_notebooks_dir, self.user.name)

    @property
    def parsed_cifs_shares(self) -> tuple[mounts.CifsShare, ...]:
        """``cifs_shares`` as checked values, parsed once when the setting was given."""
        return self._parsed_shares

    def lab_layout(self) -> mounts.LabVolumes:
        return mounts.LabVolumes(
            personal_root=self.personal_notebooks_dir,
            shared_root=self.shared_notebooks_dir,
            personal_mount_path=self.personal_mount_path,
            shared_mount_path=self.shared_mount_path,
            read_only_volumes=dict(self.lab_read_only_volumes),
            volumes=dict(self.lab_volumes),
            volume_driver_options=dict(self.volume_driver_options),
        )

    def lab_run_as(self) -> dict[str, Any]:
        identity = run_as(
            self.uid_strategy, self.lab_uid, self.lab_gid, self.nb_user, self.home_dir
        )
        if not self.throwaway_home:
            identity.pop("tmpfs", None)
        return identity
