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
from traitlets import Enum, List, Unicode, default

from .docker_spawner import LABEL_LAB, LabDockerSpawner
from .lab_settings import LabSpawnError
from .mounts import LABEL_USER, bind_mount, redacted

#: Shell run by the folder task as root; the folder path is an argument, never part of the script.
_FOLDER_SCRIPT = (
    'set -eu; folder="$1"; uid="$2"; gid="$3"; '
    'if [ -e "$folder" ] && [ ! -d "$folder" ] || [ -L "$folder" ]; then '
    'echo "not a folder: $folder" >&2; exit 3; fi; '
    'if [ ! -d "$folder" ]; then staging="$(mktemp -d "$(dirname "$folder")/.creating-XXXXXX")"; '
    'chown "$uid:$gid" "$staging"; chmod 0700 "$staging"; mv -T "$staging" "$folder" || rmdir "$staging"; fi; '
    'chown "$uid:$gid" "$folder"; chmod 0700 "$folder"'
)


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
    folder_creation = Enum(
        ["hub", "task"],
        default_value="hub",
        config=True,
        help="""Who creates a user's folder before their lab starts. ``hub``: the hub, on
        its own copy of ``lab_root`` (the same NFS mount as the nodes'). ``task``: a
        short-lived root task of the lab image on the node that runs the lab, for when the
        hub cannot see or ``chown`` ``lab_root`` (a non-root hub, or ``lab_root`` mounted
        only on the nodes).""",
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

    async def prepare_lab_folders(self) -> bool:
        if self.folder_creation == "hub":
            return await super().prepare_lab_folders()
        self.report_progress(10, "Preparing your notebook folder")
        await self._run_folder_task()
        return False

    async def _run_folder_task(self) -> None:
        """Create the user's folder with a one-shot root task (no hub access to lab_root needed)."""
        parent = self.personal_notebooks_dir
        spec = ContainerSpec(
            image=self.image,
            command=[
                "sh",
                "-c",
                _FOLDER_SCRIPT,
                "labhub-folder",
                self.personal_folder,
                str(self.lab_uid),
                str(self.lab_gid),
            ],
            user="0",
            mounts=[bind_mount(parent, parent)],
            labels={LABEL_LAB: "folder-task", LABEL_USER: self.lab_folder_name},
        )
        task = TaskTemplate(
            container_spec=spec,
            restart_policy=RestartPolicy(condition="none"),
            placement=Placement(constraints=list(self.placement_constraints) or None),
            # swarm has no "none" network; the host network adds no bridge and the task talks to nobody
            networks=["host"],
        )
        name = f"{self.object_name}-folder"
        with contextlib.suppress(NotFound):
            await self.docker("remove_service", name)
        service = await self.docker("create_service", task, name=name)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while loop.time() < deadline:
                tasks = await self.docker("tasks", filters={"service": name})
                states = [t["Status"]["State"] for t in tasks]
                if "complete" in states:
                    return
                if any(s in ("failed", "rejected") for s in states):
                    error = tasks[0]["Status"].get("Err", "")
                    raise LabSpawnError(
                        f"Your notebook folder could not be prepared on the node ({error or 'the task failed'}); "
                        "tell the lab admin."
                    )
                await asyncio.sleep(0.2)
            raise LabSpawnError(
                "Preparing your notebook folder took over 120 s; tell the lab admin."
            )
        finally:
            with contextlib.suppress(NotFound):
                await self.docker("remove_service", service["ID"])

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
