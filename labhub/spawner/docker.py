"""LabDockerSpawner: one throwaway container per user, notebooks kept on the host."""

from __future__ import annotations

from typing import Any

from dockerspawner import DockerSpawner

from labhub.engines.docker import DockerEngine
from labhub.lab.model import LABEL_LAB, Lab, Overrides
from labhub.pool.spawner import LabWarmPoolMixin
from labhub.profiles.spawner import LabProfileMixin
from labhub.spawner.lifecycle import LOOPBACK, LabSpawnerMixin, mount_failure_message

__all__ = ["LABEL_LAB", "LOOPBACK", "LabDockerSpawner", "mount_failure_message"]


class LabDockerSpawner(LabWarmPoolMixin, LabProfileMixin, LabSpawnerMixin, DockerSpawner):
    """A DockerSpawner that gives each user a throwaway container with their notebooks kept on the host.

    Personal and shared folders are created on the host with the lab owner
    before the container starts; the container is the Docker translation of
    :class:`labhub.lab.model.Lab`, or a warm pool container made into it;
    host networking picks a free loopback port.
    """

    def make_engine(self) -> DockerEngine:
        return DockerEngine(self.docker, self.client.create_host_config, self.log)

    async def create_lab_object(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        claimed = await self.claim_warm_lab(lab, overrides)
        if claimed is not None:
            return claimed
        return await self.create_container(lab, overrides)

    async def create_container(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        """Create ``lab``'s container the normal way."""
        return await self.engine.create(lab, overrides)

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

    async def remove_lab_object(self) -> None:
        await super().remove_lab_object()
        await self.release_warm_slot()
