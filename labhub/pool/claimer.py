"""What a LabDockerSpawner holds to take its lab from the warm pool: one claim, one hand-over.

``warm_pool_size = N`` keeps N lab containers started and waiting (see
:mod:`labhub.pool.model` for how one becomes a user's lab, :mod:`labhub.pool.warm_pool`
for the pool itself). A spawn takes one when the user's lab fits the pool's
template exactly; otherwise, or when the pool is empty or a check fails, the
lab starts the normal way. Either way the user gets the same lab.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from docker.errors import APIError, NotFound

from labhub.lab import folders
from labhub.lab.model import Lab, Overrides
from labhub.lab.settings import LabSettings
from labhub.pool import model as pool
from labhub.pool import mounts as pool_mounts
from labhub.pool import warm_pool
from labhub.pool.warm_pool import DockerCall


@dataclass(frozen=True)
class PoolSettings:
    """The warm pool's own settings (``warm_pool_*`` on LabDockerSpawner), read once."""

    size: int = 0
    pool_dir: str = ""
    concurrency: int = 2
    memory_reserve: int | None = None
    ready_timeout: float = 120.0

    def folder(self, settings: LabSettings) -> str:
        """The host folder of the slot folders: ``pool_dir``, or ``{lab_root}/.warm-pool``."""
        return self.pool_dir or os.path.join(settings.lab_root, ".warm-pool")


@dataclass(frozen=True)
class Claim:
    """A pool container taken for one user's lab, and what its hand-over needs.

    After a hub restart only ``slot`` is known (kept in the spawner's state): the
    rest is for the hand-over, which happened before the restart.
    """

    slot: str
    container_id: str = ""
    pool: warm_pool.WarmPool | None = None
    binds: tuple[pool.SlotBind, ...] = ()
    lab: Lab | None = None
    overrides: Overrides | None = None
    #: The container's main process on the host (0: unknown), to look at its mounts from outside.
    pid: int = 0


class WarmPoolClaimer:
    """Starts the hub's pool, claims a container of it for a lab and hands it over; holds no state."""

    def __init__(
        self,
        pool_settings: PoolSettings,
        *,
        docker: DockerCall,
        create_host_config: Callable[..., Any],
        log: logging.Logger | logging.LoggerAdapter,
    ) -> None:
        self.pool_settings = pool_settings
        self.docker = docker
        self.create_host_config = create_host_config
        self.log = log

    @property
    def enabled(self) -> bool:
        return self.pool_settings.size > 0

    # --- the pool, built once per hub --------------------------------------------------

    def start_pool(self, settings: LabSettings) -> warm_pool.WarmPool | None:
        """Start this hub's pool for labs of ``settings`` (the traits', no profile); None if none."""
        if not self.enabled:
            return None
        for running in warm_pool.running_pools():
            running.start()
            return running
        if warm_pool.refusal():
            return None  # decided once per hub: the settings do not change while it runs
        pool_dir = self.pool_settings.folder(settings)
        try:
            template, targets, overrides = pool.pool_template(settings)
            pool_mounts.ensure_pool_dir(pool_dir)
            if settings.prepare_folders:
                # pool containers mount the shared folder before anyone logs in
                folders.ensure_lab_folders(
                    settings.personal_notebooks_dir,
                    settings.shared_notebooks_dir,
                    settings.lab_uid,
                    settings.lab_gid,
                )
        except (pool.PoolMismatch, folders.LabFolderError) as err:
            warm_pool.refuse(str(err))
            self.log.warning(
                "labhub: warm_pool_size is set, but no pool can serve these labs: %s", err
            )
            return None
        return warm_pool.register(
            warm_pool.WarmPool(
                size=self.pool_settings.size,
                concurrency=self.pool_settings.concurrency,
                prefix=settings.prefix,
                pool_dir=pool_dir,
                template=template,
                overrides=overrides,
                slot_targets=targets,
                docker=self.docker,
                create_host_config=self.create_host_config,
                log=self.log,
                ready_timeout=self.pool_settings.ready_timeout,
                memory_reserve=self.pool_settings.memory_reserve,
            )
        )

    # --- one spawn ------------------------------------------------------------------

    async def claim(
        self, settings: LabSettings, lab: Lab, overrides: Overrides, username: str
    ) -> Claim | None:
        """Take a pool container for ``lab``, renamed to its name; None for a normal start.

        ``settings`` are the traits' own (no profile): the pool is built from them once.
        """
        if not self.enabled:
            return None
        try:
            running = self.start_pool(settings)
        except pool_mounts.PoolMountError as err:
            warm_pool.refuse(str(err))
            self.log.error("labhub: warm pool cannot start: %s", err)
            return None
        if running is None:
            return None
        try:
            binds = running.fit(lab, overrides)
        except pool.PoolMismatch as err:
            self.log.info("Lab of %s starts without the warm pool: %s", username, err)
            return None
        taken = await running.take(lab.name)
        if taken is None:
            self.log.info("Lab of %s starts without the warm pool: it is empty", username)
            return None
        container_id, slot = taken
        return Claim(
            slot=slot,
            container_id=container_id,
            pool=running,
            binds=tuple(binds),
            lab=lab,
            overrides=overrides,
            pid=running.taken_pid(container_id),
        )

    async def hand_over(self, claim: Claim, username: str, timeout: float) -> bool:
        """Bind the user's folders into the claimed container and start their server in it.

        False if a check failed: the container and its slot are gone and the caller
        starts a normal lab. Only a failure of the hub's own turns the pool off: it
        cannot mount, or it sees from outside that its mounts do not reach the
        container. What the exec in the container reports concerns that container
        only (it runs isolated, but it runs where a user's folders are mounted).
        """
        running, lab = claim.pool, claim.lab
        assert running is not None and lab is not None, "a restored claim has no hand-over"
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            seen = {}
            for bind in claim.binds:
                target = pool.slot_path(running.pool_dir, claim.slot, bind.index)
                ids = await loop.run_in_executor(
                    None, pool_mounts.bind_into_slot, bind.source, target, bind.read_only
                )
                seen[bind.target] = (*ids, bind.read_only)
            mounted = loop.time()
            if claim.pid:
                wrong = await loop.run_in_executor(
                    None, pool_mounts.seen_in_container, claim.pid, seen
                )
                if wrong:
                    running.turn_off(f"the hub's mounts do not reach its containers ({wrong})")
                    raise RuntimeError(wrong)
            execution = await self.docker(
                "exec_create",
                claim.container_id,
                pool.go_command(lab, seen, timeout),
                environment=dict(lab.environment),
                user=lab.user,
            )
            output = await self.docker("exec_start", execution["Id"])
            result = await self.docker("exec_inspect", execution["Id"])
            if result.get("ExitCode") != 0:
                reason = output.decode("utf-8", "replace").strip()[-300:]
                raise RuntimeError(f"the hand-over exited with {result.get('ExitCode')}: {reason}")
            await self.docker("update_container", claim.container_id, cpu_shares=1024)
        except (OSError, APIError, RuntimeError) as err:
            self.log.warning(
                "Lab of %s could not come from the warm pool (%s); starting it the normal way",
                username,
                err,
            )
            if isinstance(err, pool_mounts.PoolMountError) and "needs root" in str(err):
                running.turn_off(str(err))
            try:
                await warm_pool.remove_container(self.docker, claim.container_id, self.log)
            finally:
                await self.release(claim.slot, running.pool_dir)
            return False
        self.log.info(
            "Lab of %s came from the warm pool (slot %s; folders bound in %.0f ms, server "
            "started in %.0f ms)",
            username,
            claim.slot,
            (mounted - began) * 1000,
            (loop.time() - mounted) * 1000,
        )
        return True

    async def release(self, slot: str, pool_dir: str) -> None:
        """Unmount the user's folders from ``slot`` (after its container is gone)."""
        if slot:
            await warm_pool.release(pool_dir, slot, self.log)

    async def slot_of(self, container: str) -> str:
        """The slot label of ``container``, "" if it did not come from the pool."""
        try:
            info = await self.docker("inspect_container", container)
        except (NotFound, APIError):
            return ""
        return (info.get("Config", {}).get("Labels") or {}).get(pool.LABEL_SLOT, "")
