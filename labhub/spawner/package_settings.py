"""The settings of users' own package folders, and the spawn step that creates a folder.

The paths, mount and environment come from the pure :mod:`labhub.lab.packages`;
folders are made like personal notebook folders (:mod:`labhub.lab.folders` on the
hub, the folder helper when the hub cannot ``chown``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from traitlets import Bool, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from labhub.lab import folder_task, folders, packages


class PackageSettingsMixin(LoggingConfigurable):
    """Traits and steps for the per-user package folder; mixed into the lab spawners."""

    persistent_packages = Bool(
        True,
        config=True,
        help="""Keep what users install with ``pip install`` / ``%pip install`` across their
        containers. Each user gets a folder under ``packages_dir`` (owned by ``lab_uid``, mode
        0700, never mounted into anyone else's lab), mounted at
        ``/opt/labhub/packages`` and made Python's user base (``PYTHONUSERBASE``,
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

    @validate("packages_dir")
    def _absolute_packages_dir(self, proposal: Any) -> str:
        if not os.path.isabs(proposal.value):
            raise ValueError(f"packages_dir must be an absolute host path, not {proposal.value!r}.")
        return os.path.normpath(proposal.value)

    @property
    def packages_folder(self) -> str:
        """The host path of this user's package folder."""
        return packages.packages_folder(self.packages_dir, self.user.name)

    def lab_package_mounts(self) -> list[dict[str, Any]]:
        """The package folder's mount, or none when persistent packages are off."""
        if not self.persistent_packages:
            return []
        return [packages.packages_mount(self.packages_folder)]

    def lab_package_environment(self) -> dict[str, str]:
        """The environment that sends installs to the package folder (empty when off)."""
        if not self.persistent_packages:
            return {}
        return packages.packages_environment()

    async def prepare_package_folder(self) -> None:
        """Create this user's package folder (owner lab_uid, 0700) the way notebook folders are."""
        if not self.persistent_packages:
            return
        if folder_task.uses_task(self.folder_creation, self.lab_uid):
            await self.run_folder_helper(
                folder_task.FolderJob(
                    folder=self.packages_folder,
                    uid=self.lab_uid,
                    gid=self.lab_gid,
                    personal_root=self.packages_dir,
                    shared_root=self.shared_notebooks_dir,
                )
            )
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            folders.ensure_lab_folders,
            self.packages_dir,
            self.shared_notebooks_dir,
            self.lab_uid,
            self.lab_gid,
        )
        await loop.run_in_executor(
            None, folders.ensure_personal_folder, self.packages_folder, self.lab_uid, self.lab_gid
        )
