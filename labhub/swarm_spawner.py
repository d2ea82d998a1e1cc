"""LabSwarmSpawner: the same lab across several machines, one Docker Swarm service per user."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any

from docker.errors import NotFound
from docker.types import (
    ContainerSpec,
    EndpointSpec,
    Placement,
    Resources,
    RestartPolicy,
    TaskTemplate,
)
from dockerspawner import SwarmSpawner
from traitlets import List, Unicode, default

from . import folder_task
from .docker_spawner import LABEL_LAB, LabDockerSpawner
from .mounts import LABEL_USER, redacted


class LabSwarmSpawner(LabDockerSpawner, SwarmSpawner):
    """LabDockerSpawner's lab, run as a Swarm service so a user's lab can start on any node.

    Mounts come from the same :mod:`labhub.mounts` code as on Docker and go into the
    service's ``ContainerSpec.Mounts`` unchanged: named volumes keep their driver
    options (NFS, CIFS) instead of being turned into binds. ``lab_root`` must be
    storage every node sees at the same path (an NFS mount on every node), or folders
    are created by a short helper task (``folder_creation = "task"``).
    """

    placement_constraints = List(
        Unicode(),
        config=True,
        help="""Swarm placement constraints for labs, e.g. ``["node.labels.lab == true",
        "node.role == worker"]``.""",
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

    @default("network_name")
    def _default_network(self) -> str:
        return "host"

    @default("pull_policy")
    def _default_pull(self) -> str:
        return "skip"  # each node pulls for itself

    def host_listen_ip(self) -> str:
        return self.host_network_ip

    def _listens_on_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host_network_ip).is_loopback
        except ValueError:
            return False

    # --- folders ---------------------------------------------------------------------

    @default("folder_creation")
    def _default_folder_creation(self) -> str:
        return "task"  # the hub may not be on, or see lab_root from, the node that runs the lab

    async def create_folder_by_task(self) -> None:
        await folder_task.run_folder_service(self)

    # --- the service -------------------------------------------------------------------

    async def create_object(self) -> dict[str, Any]:
        """Create the user's service from the lab's mounts, identity, limits and placement."""
        lab_mounts = await self.lab_mount_specs()
        identity = self.lab_run_as()
        container = ContainerSpec(
            image=self.image,
            args=await self.get_command(),
            env=self.get_env(),
            user=identity["user"],
            workdir=self.home_dir,
            labels={LABEL_LAB: "true", LABEL_USER: self.lab_folder_name},
            mounts=lab_mounts,
            **self.extra_container_spec,
        )
        resources = Resources(
            mem_limit=self.mem_limit,
            mem_reservation=self.mem_guarantee,
            cpu_limit=int(self.cpu_limit * 1e9) if self.cpu_limit else None,
            cpu_reservation=int(self.cpu_guarantee * 1e9) if self.cpu_guarantee else None,
            **self.extra_resources_spec,
        )
        placement = Placement(
            constraints=list(self.placement_constraints) or None,
            preferences=[("spread", p) for p in self.placement_preferences] or None,
            **self.extra_placement_spec,
        )
        task = TaskTemplate(
            container_spec=container,
            resources=resources,
            placement=placement,
            # a lab that dies stays dead: the hub notices and the user starts a fresh one
            restart_policy=RestartPolicy(condition="none"),
            networks=[self.network_name] if self.network_name else [],
            **self.extra_task_spec,
        )
        endpoint = EndpointSpec(
            **(
                {}
                if self.uses_host_network or self.use_internal_ip
                else {"ports": {None: (self.port, "tcp")}}
            ),
            **self.extra_endpoint_spec,
        )
        self.log.debug(
            "Creating service %s with mounts %s", self.service_name, redacted(lab_mounts)
        )
        service = await self.docker(
            "create_service",
            task,
            name=self.service_name,
            endpoint_spec=endpoint,
            labels={LABEL_LAB: "true", LABEL_USER: self.lab_folder_name},
            **self.extra_create_kwargs,
        )
        # the scheduler makes the task a moment later; start_object needs it to exist
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline:
            if await self.docker("tasks", filters={"service": service["ID"]}):
                break
            await asyncio.sleep(0.05)
        return service

    async def get_ip_and_port(self) -> tuple[str, int]:
        if not self.uses_host_network:
            return await SwarmSpawner.get_ip_and_port(self)
        if self._listens_on_loopback():
            return self.ip, self.port
        # a lab on another node: connect to that node's own address
        task = await self.get_task()
        node = await self.docker("inspect_node", task["NodeID"])
        return node["Status"]["Addr"], self.port

    async def _discard_failed_start(self) -> None:
        if self.object_id:
            with contextlib.suppress(NotFound):
                await self.docker("remove_service", self.object_id)
            self.object_id = ""
        await self.remove_share_volumes()
