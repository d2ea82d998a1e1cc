"""LabSwarmSpawner: the same lab across several machines, one Docker Swarm service per user."""

from __future__ import annotations

from dockerspawner import SwarmSpawner
from traitlets import List, Unicode, default

from labhub.engines.swarm import SwarmEngine
from labhub.hub.options import DEFAULT_NETWORKS
from labhub.profiles.spawner import LabProfileMixin


class LabSwarmSpawner(LabProfileMixin, SwarmSpawner):
    """The lab of LabDockerSpawner, run as a Swarm service so a user's lab can start on any node.

    The service is the Swarm translation of the same :class:`labhub.lab.model.Lab` as
    LabDockerSpawner's container: the same mounts (named volumes keep their driver
    options, NFS and CIFS, instead of becoming binds), the same admin overrides and
    the same hardening. ``lab_root`` must be storage every node sees at the same
    path (an NFS mount on every node); folders are made by a helper task on the
    lab's node (``folder_creation = "task"``, the default here).
    """

    placement_constraints = List(
        Unicode(),
        config=True,
        help="""Swarm placement constraints for labs, e.g. ``["node.labels.lab == true",
        "node.role == worker"]``. Constraints in ``extra_placement_spec`` are added to these.""",
    )
    placement_preferences = List(
        Unicode(),
        config=True,
        help="""Spread labs over nodes by a label, e.g. ``["node.labels.rack"]``.""",
    )
    host_network_ip = Unicode(
        "127.0.0.1",
        config=True,
        help="""Address a lab listens on with ``network_name = "host"``. ``127.0.0.1`` works
        when the hub runs on every node a lab can run on (a one-node swarm); set
        ``0.0.0.0`` on several nodes, and the hub connects to the node's own address.""",
    )

    hub_assigns_gpus = False  # each node advertises its GPUs; Swarm assigns them

    @default("network_name")
    def _default_network(self) -> str:
        return DEFAULT_NETWORKS["swarm"]

    @default("pull_policy")
    def _default_pull(self) -> str:
        return "skip"  # each node pulls for itself

    @default("folder_creation")
    def _default_folder_creation(self) -> str:
        return "task"  # the hub may not be on, or see lab_root from, the node that runs the lab

    def host_listen_ip(self) -> str:
        return self.host_network_ip

    async def start_object(self) -> None:
        try:
            await super().start_object()
        except RuntimeError:
            task = await self.get_task()
            if not task:
                raise
            # the task ended before it ran: the user reads what a Docker lab that exits says
            await self._report_early_exit(task["Status"]["State"])

    def make_engine(self) -> SwarmEngine:
        return SwarmEngine(
            self.docker,
            self.log,
            host_network_ip=self.host_network_ip,
        )
