"""The warm pool in LabDockerSpawner: settings, taking a pool container, handing it to the user.

``warm_pool_size = N`` keeps N lab containers started and waiting (see
:mod:`labhub.pool.model` for how one becomes a user's lab, :mod:`labhub.pool.warm_pool`
for the pool itself). A spawn takes one when the user's lab fits the pool's
template exactly; otherwise, or when the pool is empty or a check fails, the
lab starts the normal way. Either way the user gets the same lab.
"""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace
from typing import Any

from docker.errors import APIError, NotFound
from jupyterhub.traitlets import ByteSpecification
from traitlets import Int, Unicode, validate

from labhub.lab import folders, mounts
from labhub.lab.model import LABEL_LAB, Lab, Overrides
from labhub.pool import model as pool
from labhub.pool import mounts as pool_mounts
from labhub.pool import warm_pool
from labhub.spawner.lifecycle import OVERRIDE_SETTINGS
from labhub.spawner.settings import LabSettingsMixin

#: Stand-in users whose labs tell per-user folders from shared ones.
STAND_INS = ("labhub-pool-stand-in-a", "labhub-pool-stand-in-b")


class LabWarmPoolMixin(LabSettingsMixin):
    """Warm-pool settings and steps for :class:`~labhub.spawner.docker.LabDockerSpawner`."""

    warm_pool_size = Int(
        0,
        config=True,
        help="""Lab containers kept started and waiting for the next logins (Docker only).
        A login takes one, binds the user's own folders into it and starts the user's
        server in the waiting process, which has already loaded Jupyter; the pool then
        refills in the background. Each pool container serves one user, once. A lab that
        differs from the pool's (a profile, Windows shares, GPUs, another image) starts
        the normal way. Needs a hub running as root on the Docker host (it mounts the
        users' folders into the pool's slot folders). 0 (default): no pool.""",
    )
    warm_pool_dir = Unicode(
        "",
        config=True,
        help="""Host folder, owned by root, holding the pool containers' slot folders; the
        hub makes it a shared mount point. Default: ``{lab_root}/.warm-pool``.""",
    )
    warm_pool_concurrency = Int(
        2,
        config=True,
        help="""Pool containers started at once while refilling. Waiting containers also
        run at a low CPU weight until taken, so refilling never starves running labs.""",
    )

    warm_pool_memory_reserve = ByteSpecification(
        None,
        allow_none=True,
        config=True,
        help="""Memory the warm pool leaves free on the Docker host for the labs people work
        in, such as ``8G``. While the host has less available than this (``MemAvailable``),
        the pool starts no further waiting container and logs once how many it holds and
        why; logins beyond those get normal starts. A pool larger than the machine can
        hold thus stops short instead of pushing running labs out of memory. Default: a
        tenth of the host's memory, at least 2G.""",
    )

    @validate("warm_pool_size", "warm_pool_concurrency")
    def _not_negative(self, proposal: Any) -> int:
        if proposal.value < 0:
            raise ValueError(f"{proposal.trait.name} must be 0 or more, not {proposal.value}.")
        return proposal.value

    _warm_claim: tuple[warm_pool.WarmPool, str, list[pool.SlotBind], Lab, Overrides] | None = None
    warm_slot: str = ""

    @property
    def lab_pool_dir(self) -> str:
        return self.warm_pool_dir or os.path.join(self.lab_root, ".warm-pool")

    # --- the pool, built once per hub --------------------------------------------------

    def warm_pool_template(self) -> tuple[Lab, list[str], Overrides]:
        """The pool's lab (a stand-in user's), its per-user container paths and overrides.

        Raises :class:`pool.PoolMismatch` for settings no pool can serve.
        """
        if not self.remove:
            raise pool.PoolMismatch("remove is False, and a pool container must be thrown away")
        if self.parsed_cifs_shares:
            raise pool.PoolMismatch("Windows shares are mounted with each user's password")
        if self.uid_strategy != "direct":
            raise pool.PoolMismatch("only uid_strategy 'direct' starts the server as the lab uid")
        callables = [t for t in OVERRIDE_SETTINGS.values() if callable(getattr(self, t, None))]
        if callables or callable(self.environment) or callable(self.image):
            raise pool.PoolMismatch(
                f"{', '.join(callables) or 'environment or image'} is computed per user"
            )
        labs = []
        for name in STAND_INS:
            stand_in = type(self)(config=self.config, user=SimpleNamespace(name=name))
            labs.append(stand_in.stand_in_lab())
        targets = pool.per_user_binds(labs[0].mounts, labs[1].mounts)
        overrides = Overrides(
            **{
                setting: getattr(self, trait, None) or {}
                for setting, trait in OVERRIDE_SETTINGS.items()
            }
        )
        return labs[0], targets, overrides

    def stand_in_lab(self) -> Lab:
        """This (stand-in) user's lab with what is known before a login: no token, no URLs."""
        environment = {
            **{k: str(v) for k, v in (self.environment or {}).items() if not callable(v)},
            **self.lab_run_as()["environment"],
            **self.lab_package_environment(),
        }
        return self.lab_from_settings(
            command=[pool.SERVER_COMMAND],
            environment=environment,
            mounts=mounts.lab_mounts(
                self.lab_layout(), self.user.name, cifs=self.lab_package_mounts()
            )
            + [dict(m) for m in self.mount_binds],
            labels={LABEL_LAB: "true"},
        )

    def start_warm_pool(self) -> warm_pool.WarmPool | None:
        """Start this hub's pool (at hub start, or at the first spawn); None if there is none."""
        if self.warm_pool_size <= 0:
            return None
        for running in warm_pool.running_pools():
            running.start()
            return running
        if warm_pool.refusal():
            return None  # decided once per hub: the settings do not change while it runs
        try:
            template, targets, overrides = self.warm_pool_template()
            pool_mounts.ensure_pool_dir(self.lab_pool_dir)
            if self.prepare_folders:
                # pool containers mount the shared folder before anyone logs in
                folders.ensure_lab_folders(
                    self.personal_notebooks_dir,
                    self.shared_notebooks_dir,
                    self.lab_uid,
                    self.lab_gid,
                )
        except (pool.PoolMismatch, folders.LabFolderError) as err:
            warm_pool.refuse(str(err))
            self.log.warning(
                "labhub: warm_pool_size is set, but no pool can serve these labs: %s", err
            )
            return None
        return warm_pool.register(
            warm_pool.WarmPool(
                size=self.warm_pool_size,
                concurrency=self.warm_pool_concurrency,
                prefix=self.prefix,
                pool_dir=self.lab_pool_dir,
                template=template,
                overrides=overrides,
                slot_targets=targets,
                docker=self.docker,
                create_host_config=self.client.create_host_config,
                log=self.log,
                ready_timeout=float(self.start_timeout),
                memory_reserve=self.warm_pool_memory_reserve,
            )
        )

    # --- one spawn ------------------------------------------------------------------

    async def claim_warm_lab(self, lab: Lab, overrides: Overrides) -> dict[str, Any] | None:
        """Take a pool container for ``lab``, renamed to its name; None for a normal start."""
        self._warm_claim = None
        if self.warm_pool_size <= 0:
            return None
        try:
            running = self.start_warm_pool()
        except pool_mounts.PoolMountError as err:
            warm_pool.refuse(str(err))
            self.log.error("labhub: warm pool cannot start: %s", err)
            return None
        if running is None:
            return None
        try:
            binds = running.fit(lab, overrides)
        except pool.PoolMismatch as err:
            self.log.info("Lab of %s starts without the warm pool: %s", self.user.name, err)
            return None
        taken = await running.take(lab.name)
        if taken is None:
            self.log.info("Lab of %s starts without the warm pool: it is empty", self.user.name)
            return None
        container_id, slot = taken
        self._warm_claim = (running, slot, binds, lab, overrides)
        self.warm_slot = slot
        return {"Id": container_id}

    async def hand_over_warm_lab(self) -> bool:
        """Bind the user's folders into the claimed container and start their server in it.

        False if a check failed: the container is gone and the caller starts a normal lab.
        """
        assert self._warm_claim is not None
        running, slot, binds, lab, _ = self._warm_claim
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            seen = {}
            for bind in binds:
                target = pool.slot_path(running.pool_dir, slot, bind.index)
                seen[bind.target] = await loop.run_in_executor(
                    None, pool_mounts.bind_into_slot, bind.source, target, bind.read_only
                )
            mounted = loop.time()
            execution = await self.docker(
                "exec_create",
                self.object_id,
                pool.go_command(lab, seen, self.start_timeout),
                environment=dict(lab.environment),
                user=lab.user,
            )
            output = await self.docker("exec_start", execution["Id"])
            result = await self.docker("exec_inspect", execution["Id"])
            if result.get("ExitCode") != 0:
                reason = output.decode("utf-8", "replace").strip()[-300:]
                if result.get("ExitCode") == pool.WRONG_MOUNT_EXIT:
                    running.turn_off(
                        f"a pool container did not see the folder mounted for it ({reason})"
                    )
                raise RuntimeError(f"the hand-over exited with {result.get('ExitCode')}: {reason}")
            await self.docker("update_container", self.object_id, cpu_shares=1024)
        except (OSError, APIError, RuntimeError) as err:
            self.log.warning(
                "Lab of %s could not come from the warm pool (%s); starting it the normal way",
                self.user.name,
                err,
            )
            if isinstance(err, pool_mounts.PoolMountError) and "needs root" in str(err):
                running.turn_off(str(err))
            await self.remove_warm_lab()
            return False
        self.log.info(
            "Lab of %s came from the warm pool (slot %s; folders bound in %.0f ms, server "
            "started in %.0f ms)",
            self.user.name,
            slot,
            (mounted - began) * 1000,
            (loop.time() - mounted) * 1000,
        )
        return True

    async def remove_warm_lab(self) -> None:
        """Remove a claimed container and release its slot."""
        try:
            await warm_pool.remove_container(self.docker, self.object_id, self.log)
        finally:
            self.object_id = ""
            await self.release_warm_slot()

    async def release_warm_slot(self, slot: str = "") -> None:
        """Unmount the user's folders from the pool slot this lab came from (after it is gone)."""
        slot = slot or self.warm_slot
        self.warm_slot = ""
        self._warm_claim = None
        if slot:
            await warm_pool.release(self.lab_pool_dir, slot, self.log)

    async def warm_slot_of(self, container: str) -> str:
        """The slot label of ``container``, "" if it did not come from the pool."""
        try:
            info = await self.docker("inspect_container", container)
        except (NotFound, APIError):
            return ""
        return (info.get("Config", {}).get("Labels") or {}).get(pool.LABEL_SLOT, "")
