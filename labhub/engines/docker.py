"""DockerEngine: labs as containers on the one Docker engine the hub talks to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from docker.errors import APIError, NotFound

from labhub.engines.base import EXIT_OUTPUT_LINES, DockerCall, ExitReport
from labhub.lab import folder_task
from labhub.lab.model import Lab, Overrides, container_spec
from labhub.lab.mounts import LABEL_USER, redacted


class DockerEngine:
    """The :class:`~labhub.engines.base.Engine` of LabDockerSpawner."""

    name = "Docker"

    def __init__(
        self,
        docker: DockerCall,
        create_host_config: Callable[..., Any],
        log: logging.Logger | logging.LoggerAdapter,
    ):
        self.docker = docker
        self.create_host_config = create_host_config
        self.log = log

    def translate(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        return container_spec(lab, overrides)

    async def create(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        spec = self.translate(lab, overrides)
        self.log.debug(
            "Creating %s with mounts %s", lab.name, redacted(spec["host_config"]["mounts"])
        )
        spec["host_config"] = self.create_host_config(**spec["host_config"])
        return await self.docker("create_container", **spec)

    async def remove(self, object_id: str) -> None:
        with contextlib.suppress(NotFound):
            await self.docker("remove_container", object_id, force=True, v=True)

    async def exit_report(self, object_id: str) -> ExitReport:
        info = await self.docker("inspect_container", object_id)
        state = info.get("State", {})
        logs = await self.docker("logs", object_id, tail=EXIT_OUTPUT_LINES)
        return ExitReport(
            state.get("ExitCode"), bool(state.get("OOMKilled")), logs.decode("utf-8", "replace")
        )

    async def run_folder_helper(
        self,
        job: folder_task.FolderJob,
        *,
        image: str,
        name: str,
        owner: str,
        placement: list[str],
    ) -> None:
        """A one-shot root container of the lab image, on no network, with the folder's parent mounted."""
        host_config = self.create_host_config(
            mounts=folder_task.helper_mounts(job),
            network_mode="none",  # the helper talks to nobody
            security_opt=["no-new-privileges:true"],
            **folder_task.helper_capabilities(),
        )
        try:
            container = await self.docker(
                "create_container",
                image=image,
                command=folder_task.helper_command(job),
                user="0",
                entrypoint=[],
                host_config=host_config,
                labels={folder_task.LABEL_HELPER: "true", LABEL_USER: owner},
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

    async def container_of(self, object_id: str) -> str | None:
        return object_id or None

    async def host_address(self, object_id: str, loopback: str) -> str:
        return loopback
