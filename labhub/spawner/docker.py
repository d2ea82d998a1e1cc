"""LabDockerSpawner: one throwaway container per user, notebooks kept on the host."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from docker.errors import APIError, NotFound
from dockerspawner import DockerSpawner

from labhub.lab import folder_task
from labhub.lab.model import LABEL_LAB, Lab, Overrides, container_spec
from labhub.lab.mounts import LABEL_USER, redacted
from labhub.pool.spawner import LabWarmPoolMixin
from labhub.profiles.spawner import LabProfileMixin
from labhub.spawner.lifecycle import (
    EXIT_OUTPUT_LINES,
    LOOPBACK,
    LabSpawnerMixin,
    mount_failure_message,
)

__all__ = ["LABEL_LAB", "LOOPBACK", "LabDockerSpawner", "mount_failure_message"]


class LabDockerSpawner(LabWarmPoolMixin, LabProfileMixin, LabSpawnerMixin, DockerSpawner):
    """A DockerSpawner that gives each user a throwaway container with their notebooks kept on the host.

    Personal and shared folders are created on the host with the lab owner
    before the container starts; the container is the Docker translation of
    :class:`labhub.lab.model.Lab`, or a warm pool container made into it;
    host networking picks a free loopback port.
    """

    def translate_lab(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        return container_spec(lab, overrides)

    async def create_lab_object(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        claimed = await self.claim_warm_lab(lab, overrides)
        if claimed is not None:
            return claimed
        return await self.create_container(lab, overrides)

    async def create_container(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        """Create ``lab``'s container the normal way."""
        spec = self.translate_lab(lab, overrides)
        self.log.debug(
            "Creating %s with mounts %s", lab.name, redacted(spec["host_config"]["mounts"])
        )
        spec["host_config"] = self.client.create_host_config(**spec["host_config"])
        return await self.docker("create_container", **spec)

    async def start_object(self) -> None:
        if self._warm_claim is None:
            await super().start_object()
            return
        *_, lab, overrides = self._warm_claim
        if not await self.hand_over_warm_lab():
            # the pool could not serve this user: the same lab, started the normal way
            self.object_id = (await self.create_container(lab, overrides))["Id"]
            await super().start_object()

    async def remove_object(self) -> None:
        slot = self.warm_slot or await self.warm_slot_of(self.object_id or self.object_name)
        await super().remove_object()
        await self.release_warm_slot(slot)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.warm_slot:
            state["warm_slot"] = self.warm_slot
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.warm_slot = state.get("warm_slot", "")

    async def lab_exit_report(self) -> tuple[int | None, bool, str]:
        info = await self.docker("inspect_container", self.object_id)
        state = info.get("State", {})
        logs = await self.docker("logs", self.object_id, tail=EXIT_OUTPUT_LINES)
        return state.get("ExitCode"), bool(state.get("OOMKilled")), logs.decode("utf-8", "replace")

    async def remove_lab_object(self) -> None:
        with contextlib.suppress(NotFound):
            await self.docker("remove_container", self.object_id, force=True, v=True)
        await self.release_warm_slot()

    async def run_folder_helper(self, job: folder_task.FolderJob) -> None:
        """Create the folder with a one-shot root container of the lab image."""
        host_config = self.client.create_host_config(
            mounts=folder_task.helper_mounts(job),
            network_mode="none",  # the helper talks to nobody
        )
        try:
            container = await self.docker(
                "create_container",
                image=self.image,
                command=folder_task.helper_command(job),
                user="0",
                entrypoint=[],
                host_config=host_config,
                labels={folder_task.LABEL_HELPER: "true", LABEL_USER: self.lab_folder_name},
            )
        except APIError as err:
            if "does not exist" in str(err):
                raise folder_task.FolderHelperError(
                    folder_task.missing_parent_message(job)
                ) from None
            raise
        cid = container["Id"]
        try:
            await self.docker("start", cid)
            result = await asyncio.wait_for(self.docker("wait", cid), folder_task.TIMEOUT)
            if result.get("StatusCode") != 0:
                logs = await self.docker("logs", cid, stdout=False, stderr=True)
                raise folder_task.FolderHelperError(
                    folder_task.failure_message(logs.decode("utf-8", "replace")[-300:])
                )
        except asyncio.TimeoutError:
            raise folder_task.FolderHelperError(folder_task.timeout_message()) from None
        finally:
            with contextlib.suppress(NotFound):
                await self.docker("remove_container", cid, force=True)
