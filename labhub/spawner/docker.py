"""LabDockerSpawner: one throwaway container per user, notebooks kept on the host."""

from __future__ import annotations

from typing import Any

from dockerspawner import DockerSpawner
from jupyterhub.traitlets import ByteSpecification
from traitlets import Int, Unicode, validate

from labhub.engines.docker import DockerEngine
from labhub.lab.model import LABEL_LAB, Lab, Overrides
from labhub.pool import warm_pool
from labhub.pool.claimer import Claim, PoolSettings, WarmPoolClaimer
from labhub.profiles.spawner import LabProfileMixin
from labhub.spawner.lifecycle import LOOPBACK, mount_failure_message
from labhub.spawner.settings import settings_from_traits

__all__ = ["LABEL_LAB", "LOOPBACK", "LabDockerSpawner", "mount_failure_message"]


class LabDockerSpawner(LabProfileMixin, DockerSpawner):
    """A DockerSpawner that gives each user a throwaway container with their notebooks kept on the host.

    Personal and shared folders are created on the host with the lab owner
    before the container starts; the container is the Docker translation of
    :class:`labhub.lab.model.Lab`, or a warm pool container made into it (by the
    :class:`~labhub.pool.claimer.WarmPoolClaimer` the spawner holds); host
    networking picks a free loopback port.
    """

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

    #: The pool container this lab came from, if any (only its slot survives a hub restart).
    warm_claim: Claim | None = None
    _pool_client: WarmPoolClaimer | None = None

    @property
    def pool_client(self) -> WarmPoolClaimer:
        """The warm pool as this spawner uses it, its settings read once."""
        if self._pool_client is None:
            self._pool_client = WarmPoolClaimer(
                PoolSettings(
                    size=self.warm_pool_size,
                    pool_dir=self.warm_pool_dir,
                    concurrency=self.warm_pool_concurrency,
                    memory_reserve=self.warm_pool_memory_reserve,
                    ready_timeout=float(self.start_timeout),
                ),
                docker=self.docker,
                # the client is made when a pool first needs it, not for a hub without one
                create_host_config=lambda **kwargs: self.client.create_host_config(**kwargs),
                log=self.log,
            )
        return self._pool_client

    @property
    def warm_slot(self) -> str:
        """The pool slot this lab came from, "" for a normal start."""
        return self.warm_claim.slot if self.warm_claim else ""

    def start_warm_pool(self) -> warm_pool.WarmPool | None:
        """Start this hub's pool from the configured settings; None if there is none."""
        if not self.pool_client.enabled:
            return None
        return self.pool_client.start_pool(settings_from_traits(self))

    def make_engine(self) -> DockerEngine:
        return DockerEngine(self.docker, self.client.create_host_config, self.log)

    async def create_lab_object(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        self.warm_claim = None
        if self.pool_client.enabled:
            # the pool is made from the configured settings, never from this spawn's profile
            self.warm_claim = await self.pool_client.claim(
                settings_from_traits(self), lab, overrides, self.user.name
            )
        if self.warm_claim is not None:
            return {"Id": self.warm_claim.container_id}
        return await self.create_container(lab, overrides)

    async def create_container(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        """Create ``lab``'s container the normal way."""
        return await self.engine.create(lab, overrides)

    async def start_object(self) -> None:
        claim = self.warm_claim
        if claim is None or claim.lab is None:
            await super().start_object()
            return
        if not await self.pool_client.hand_over(claim, self.user.name, self.start_timeout):
            # the pool could not serve this user (its container and slot are gone): the same
            # lab, started the normal way
            self.warm_claim = None
            self.object_id = ""
            self.object_id = (await self.create_container(claim.lab, claim.overrides))["Id"]
            await super().start_object()

    async def remove_object(self) -> None:
        slot = self.warm_slot or await self.pool_client.slot_of(self.object_id or self.object_name)
        await super().remove_object()
        await self.release_warm_slot(slot)

    async def release_warm_slot(self, slot: str = "") -> None:
        """Unmount the user's folders from the pool slot this lab came from (after it is gone)."""
        slot = slot or self.warm_slot
        self.warm_claim = None
        if slot:
            pool_dir = self.pool_client.pool_settings.folder(settings_from_traits(self))
            await self.pool_client.release(slot, pool_dir)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.warm_slot:
            state["warm_slot"] = self.warm_slot  # the key running hubs already keep
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        slot = state.get("warm_slot", "")
        self.warm_claim = Claim(slot=slot) if slot else None

    async def remove_lab_object(self) -> None:
        await super().remove_lab_object()
        await self.release_warm_slot()
