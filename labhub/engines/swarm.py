"""SwarmEngine: labs as one-task Swarm services, so a user's lab can start on any node."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Any

from docker.errors import NotFound
from docker.types import ContainerSpec, Placement, RestartPolicy, TaskTemplate

from labhub.engines.base import EXIT_OUTPUT_LINES, DockerCall, ExitReport
from labhub.lab import folder_task
from labhub.lab.model import Lab, Overrides, service_spec
from labhub.lab.mounts import LABEL_USER, redacted

#: Task states after which a one-shot task runs no more.
_FINISHED = ("complete", "failed", "rejected")


class SwarmEngine:
    """The :class:`~labhub.engines.base.Engine` of LabSwarmSpawner."""

    name = "Swarm"

    def __init__(
        self,
        docker: DockerCall,
        log: logging.Logger | logging.LoggerAdapter,
        *,
        host_network_ip: str,
    ):
        self.docker = docker
        self.log = log
        self.host_network_ip = host_network_ip

    def translate(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        return service_spec(lab, overrides)

    async def create(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        spec = self.translate(lab, overrides)
        self.log.debug("Creating service %s with mounts %s", lab.name, redacted(lab.mounts))
        service = await self.docker("create_service", **spec)
        # the scheduler makes the task a moment later; starting needs it to exist
        await self._wait_for_tasks(service["ID"], bool, 60)
        return service

    async def remove(self, object_id: str) -> None:
        with contextlib.suppress(NotFound):
            await self.docker("remove_service", object_id)

    async def task_of(self, service: str) -> dict[str, Any]:
        """The service's running task, else its newest one; empty when it has none."""
        tasks = await self.docker("tasks", filters={"service": service, "desired-state": "running"})
        if not tasks:
            tasks = await self.docker("tasks", filters={"service": service})
        return max(tasks, key=lambda t: t.get("CreatedAt", ""), default={})

    async def exit_report(self, object_id: str) -> ExitReport:
        status = (await self.task_of(object_id)).get("Status", {})
        exit_code = status.get("ContainerStatus", {}).get("ExitCode")
        chunks = await self.docker(
            "service_logs", object_id, stdout=True, stderr=True, tail=EXIT_OUTPUT_LINES
        )
        output = b"".join(chunks).decode("utf-8", "replace")
        # Swarm does not report an out-of-memory kill apart from the exit code (137)
        return ExitReport(exit_code, False, output or status.get("Err", ""))

    async def _wait_for_tasks(self, service_id: str, done, timeout: float) -> list[dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            tasks = await self.docker("tasks", filters={"service": service_id})
            if done(tasks):
                return tasks
            await asyncio.sleep(0.05 if not tasks else 0.2)
        raise folder_task.FolderHelperError(folder_task.timeout_message())

    async def run_folder_helper(
        self,
        job: folder_task.FolderJob,
        *,
        image: str,
        name: str,
        owner: str,
        placement: list[str],
    ) -> None:
        """A one-shot root Swarm task of the lab image, placed like the user's lab."""
        spec = ContainerSpec(
            image=image,
            command=folder_task.helper_command(job),
            user="0",
            mounts=folder_task.helper_mounts(job),
            labels={folder_task.LABEL_HELPER: "true", LABEL_USER: owner},
            **folder_task.helper_capabilities(),
        )
        template = TaskTemplate(
            container_spec=spec,
            restart_policy=RestartPolicy(condition="none"),
            placement=Placement(constraints=list(placement) or None),
            # Swarm has no "none" network; the host network adds no bridge, and the task talks to nobody
            networks=["host"],
        )
        with contextlib.suppress(NotFound):
            await self.docker("remove_service", name)
        service = await self.docker(
            "create_service", template, name=name, labels={folder_task.LABEL_HELPER: "true"}
        )

        def finished(tasks: list[dict]) -> bool:
            return any(t["Status"]["State"] in _FINISHED for t in tasks)

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

    async def container_of(self, object_id: str) -> str | None:
        # the task's container, when it runs on the engine the hub talks to
        container = (
            (await self.task_of(object_id)).get("Status", {}).get("ContainerStatus", {})
        ).get("ContainerID")
        if not container:
            return None
        try:
            await self.docker("inspect_container", container)
        except NotFound:
            return None
        return container

    async def host_address(self, object_id: str, loopback: str) -> str:
        try:
            if ipaddress.ip_address(self.host_network_ip).is_loopback:
                return loopback
        except ValueError:
            pass
        # a lab on another node: connect to that node's own address
        node = await self.docker("inspect_node", (await self.task_of(object_id))["NodeID"])
        return node["Status"]["Addr"]
