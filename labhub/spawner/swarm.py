"""LabSwarmSpawner: the same lab across several machines, one Docker Swarm service per user."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any

from docker.errors import NotFound
from docker.types import ContainerSpec, Placement, RestartPolicy, TaskTemplate
from dockerspawner import SwarmSpawner
from traitlets import List, Unicode, default

from labhub.lab import folder_task
from labhub.lab.model import Lab, Overrides, service_spec
from labhub.lab.mounts import LABEL_USER, redacted
from labhub.lab.names import folder_helper_name
from labhub.profiles.spawner import LabProfileMixin
from labhub.spawner.lifecycle import EXIT_OUTPUT_LINES


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
        return "host"

    @default("pull_policy")
    def _default_pull(self) -> str:
        return "skip"  # each node pulls for itself

    @default("folder_creation")
    def _default_folder_creation(self) -> str:
        return "task"  # the hub may not be on, or see lab_root from, the node that runs the lab

    def host_listen_ip(self) -> str:
        return self.host_network_ip

    async def host_network_address(self) -> str:
        try:
            if ipaddress.ip_address(self.host_network_ip).is_loopback:
                return self.ip
        except ValueError:
            pass
        # a lab on another node: connect to that node's own address
        task = await self.get_task()
        node = await self.docker("inspect_node", task["NodeID"])
        return node["Status"]["Addr"]

    async def lab_container_id(self) -> str | None:
        # the task's container, when it runs on the engine the hub talks to
        task = await self.get_task() or {}
        container = task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
        if not container:
            return None
        try:
            await self.docker("inspect_container", container)
        except NotFound:
            return None
        return container

    # --- the service -------------------------------------------------------------------

    def translate_lab(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        return service_spec(lab, overrides)

    async def create_lab_object(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        spec = self.translate_lab(lab, overrides)
        self.log.debug("Creating service %s with mounts %s", lab.name, redacted(lab.mounts))
        service = await self.docker("create_service", **spec)
        # the scheduler makes the task a moment later; start_object needs it to exist
        await self._wait_for_tasks(service["ID"], lambda tasks: bool(tasks), 60)
        return service

    async def lab_exit_report(self) -> tuple[int | None, bool, str]:
        task = await self.get_task() or {}
        status = task.get("Status", {})
        exit_code = status.get("ContainerStatus", {}).get("ExitCode")
        chunks = await self.docker(
            "service_logs", self.object_id, stdout=True, stderr=True, tail=EXIT_OUTPUT_LINES
        )
        output = b"".join(chunks).decode("utf-8", "replace")
        return exit_code, False, output or status.get("Err", "")

    async def remove_lab_object(self) -> None:
        with contextlib.suppress(NotFound):
            await self.docker("remove_service", self.object_id)

    async def _wait_for_tasks(self, service_id: str, done, timeout: float) -> list[dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            tasks = await self.docker("tasks", filters={"service": service_id})
            if done(tasks):
                return tasks
            await asyncio.sleep(0.05 if not tasks else 0.2)
        raise folder_task.FolderHelperError(folder_task.timeout_message())

    # --- folders -----------------------------------------------------------------------

    async def run_folder_helper(self, job: folder_task.FolderJob) -> None:
        """Create the folder with a one-shot root Swarm task, placed like the user's lab."""
        spec = ContainerSpec(
            image=self.image,
            command=folder_task.helper_command(job),
            user="0",
            mounts=folder_task.helper_mounts(job),
            labels={folder_task.LABEL_HELPER: "true", LABEL_USER: self.lab_folder_name},
        )
        template = TaskTemplate(
            container_spec=spec,
            restart_policy=RestartPolicy(condition="none"),
            placement=Placement(constraints=list(self.placement_constraints) or None),
            # Swarm has no "none" network; the host network adds no bridge, and the task talks to nobody
            networks=["host"],
        )
        name = folder_helper_name(self.object_name)
        with contextlib.suppress(NotFound):
            await self.docker("remove_service", name)
        service = await self.docker(
            "create_service", template, name=name, labels={folder_task.LABEL_HELPER: "true"}
        )

        def finished(tasks: list[dict]) -> bool:
            return any(t["Status"]["State"] in ("complete", "failed", "rejected") for t in tasks)

        try:
            tasks = await self._wait_for_tasks(service["ID"], finished, folder_task.TIMEOUT)
            failed = [t for t in tasks if t["Status"]["State"] in ("failed", "rejected")]
            if failed and not any(t["Status"]["State"] == "complete" for t in tasks):
                raise folder_task.FolderHelperError(
                    folder_task.failure_message(failed[0]["Status"].get("Err", ""))
                )
        finally:
            with contextlib.suppress(NotFound):
                await self.docker("remove_service", service["ID"])
