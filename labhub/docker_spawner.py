"""LabDockerSpawner: one throwaway container per user, notebooks kept on the host."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from docker.errors import APIError, NotFound
from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from tornado.httpclient import AsyncHTTPClient
from traitlets import Bool, Unicode, default

from .lab_settings import LabSettingsMixin, LabSpawnError
from .mounts import LABEL_USER, redacted
from .specs import container_host_config, deep_merge

#: Label on every lab container, so the admin can list them with ``docker ps --filter``.
LABEL_LAB = "org.labhub.lab"
#: Where a host-network lab listens: the host's loopback, never its public interfaces.
LOOPBACK = "127.0.0.1"


_VOLUME_PATH = re.compile(r"/volumes/([^/\s]+)/_data")


def mount_failure_message(error: str) -> str | None:
    """One sentence for a user whose lab could not mount a volume, or None for other errors.

    Docker's own message repeats the mount data, CIFS password included; only the
    volume name and the kernel's last word (e.g. "no such device") are kept.
    """
    lowered = error.lower()
    if (
        "error while mounting volume" not in lowered
        and "failed to mount local volume" not in lowered
    ):
        return None
    found = _VOLUME_PATH.search(error)
    volume = found.group(1) if found else "a network share"
    reason = error.rsplit(": ", 1)[-1].strip().rstrip(".")
    if "=" in reason or len(reason) > 80:
        reason = "the mount was refused"
    return (
        f"Your lab could not mount its network share volume {volume} ({reason}); "
        "nothing was started. Try again later or tell the lab admin."
    )


class LabDockerSpawner(LabSettingsMixin, DockerSpawner):
    """A DockerSpawner that gives each user a throwaway container with their notebooks kept on the host.

    Personal and shared folders are created on the host with the lab owner
    before the container starts; every mount, Windows shares included, is built
    by :mod:`labhub.mounts`; host networking picks a free loopback port.
    """

    remove = Bool(
        True,
        config=True,
        help="""Remove the container when the server stops (throwaway labs). Nothing in
        the container's own filesystem survives; notebooks live in the mounted folders.""",
    )

    name_template = Unicode(
        config=True,
        help="""Container name; ``{username}`` is the safe folder name of the user and
        ``{servername}`` the named server's safe name. Default ``{prefix}-{username}``
        (plus ``--{servername}`` for named servers).""",
    )

    @default("name_template")
    def _default_name_template(self) -> str:
        return "{prefix}-{username}" + ("--{servername}" if self.name else "")

    @default("prefix")
    def _default_prefix(self) -> str:
        return "labhub"

    def template_namespace(self) -> dict[str, str]:
        # One naming rule for folders, volumes and containers: the safe folder name.
        namespace = super().template_namespace()
        namespace["username"] = namespace["safe_username"] = self.lab_folder_name
        namespace["servername"] = self.escape(getattr(self, "name", "") or "").lower()
        return namespace

    @property
    def uses_host_network(self) -> bool:
        return self.network_name == "host"

    def host_listen_ip(self) -> str:
        """Where a host-network lab listens: the host's loopback, never its public interfaces."""
        return LOOPBACK

    # Every mount goes through lab_mount_specs; DockerSpawner's own binds are not used.
    @property
    def volume_binds(self) -> dict:
        return {}

    @property
    def volume_mount_points(self) -> list:
        return []

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.update(self.lab_run_as()["environment"])
        # remote kernels run as the hub user's name; the folder name is only for paths
        env.update(self.lab_gateway_environment(self.user.name))
        return env

    async def create_object(self) -> dict[str, Any]:
        """Create the user's container from the lab's mounts, identity and limits."""
        lab_mounts = await self.lab_mount_specs()
        identity = self.lab_run_as()
        create_kwargs: dict[str, Any] = dict(
            image=self.image,
            environment=self.get_env(),
            name=self.container_name,
            command=await self.get_command(),
            user=identity["user"],
            working_dir=self.home_dir,
            labels={LABEL_LAB: "true", LABEL_USER: self.lab_folder_name},
        )
        if not self.uses_host_network:
            create_kwargs["ports"] = {f"{self.port}/tcp": None}
        extra_create = await self._resolved(self.extra_create_kwargs)
        extra_host = await self._resolved(self.extra_host_config)
        create_kwargs = deep_merge(create_kwargs, extra_create)

        host_config = container_host_config(
            network_name=self.network_name,
            mounts=lab_mounts + list(self.mount_binds),
            publish_port=None
            if self.use_internal_ip or self.uses_host_network
            else (self.port, self.host_ip),
            links=self.links,
            mem_limit=self.mem_limit,
            cpu_limit=self.cpu_limit,
            extra=extra_host,
        )
        self.log.debug(
            "Creating %s with mounts %s", self.container_name, redacted(host_config["mounts"])
        )
        create_kwargs["host_config"] = self.client.create_host_config(**host_config)
        return await self.docker("create_container", **create_kwargs)

    async def _resolved(self, value: Any) -> dict[str, Any]:
        value = self._eval_if_callable(value)
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        return self._render_templates(value or {})

    async def start(self) -> tuple[str, int]:
        if self.uses_host_network:
            # A host-network container shares the host's ports: pick a free one, listen on loopback only.
            self.port = random_port()
            self.ip = self.host_listen_ip()
        self.reset_progress()
        if "\x00" in self.user.name:
            # the engine refuses a NUL in JUPYTERHUB_USER only after creating the container
            raise LabSpawnError(
                "This username contains a NUL character, which a lab container cannot carry; "
                "ask the lab admin to rename the user."
            )
        await self.prepare_lab_folders()
        if self.cifs_shares:
            names = ", ".join(share["name"] for share in self.cifs_shares)
            self.report_progress(30, f"Mounting Windows shares: {names}")
        self.report_progress(50, "Starting your lab container")
        try:
            ip_port = await super().start()
        except APIError as err:
            message = mount_failure_message(str(err.explanation or err))
            await self._discard_failed_start()
            if message:
                self.log.error("Spawn of %s failed: %s", self.user.name, message)
                raise LabSpawnError(message) from None
            raise
        self.report_progress(80, "Container running; waiting for JupyterLab to answer")
        await self.wait_for_server(*ip_port)
        return ip_port

    async def wait_for_server(self, ip: str, port: int) -> None:
        """Return as soon as the lab answers HTTP, or fail fast if its container stops.

        The hub polls a new server with exponential backoff (waits of up to 5 s), so a
        lab ready at 3.1 s is often seen at 6 s; polling here from every 50 ms (easing
        to 0.5 s) removes that gap. A container that exits while starting is reported at once, with its exit
        code, instead of after ``http_timeout``.
        """
        if getattr(self, "internal_ssl", False):
            return  # the hub's own check knows the certificates
        client = AsyncHTTPClient()
        url = f"http://{ip}:{port}{self.server.base_url if self.server else '/'}api"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        next_state_check = loop.time() + 1.0
        interval = 0.05
        while loop.time() < deadline:
            try:
                response = await client.fetch(
                    url, raise_error=False, connect_timeout=1, request_timeout=2
                )
                if response.code and response.code < 500 and response.code != 599:
                    return
            except OSError:
                pass  # not listening yet
            if loop.time() >= next_state_check:
                next_state_check = loop.time() + 1.0
                state = await self.poll()
                if state is not None:
                    self.log.error(
                        "Lab container of %s exited while starting: %s", self.user.name, state
                    )
                    await self._discard_failed_start()
                    raise LabSpawnError(
                        "Your lab container stopped while starting; try again, and if it "
                        "happens again tell the lab admin (the hub log has the details)."
                    )
            await asyncio.sleep(interval)
            # start fine-grained, then ease off so fifty labs starting at once do not flood the hub
            interval = min(interval * 1.2, 0.5)

    async def _discard_failed_start(self) -> None:
        """Remove whatever a failed start left behind: the container and the user's share volumes."""
        if self.object_id:
            with contextlib.suppress(NotFound):
                await self.docker("remove_container", self.object_id, force=True, v=True)
            self.object_id = ""
        await self.remove_share_volumes()

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.object_id and self.uses_host_network:
            # the port was picked at spawn time; a restarted hub must find the server on it again
            state["host_port"] = self.port
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if state.get("host_port"):
            self.port = int(state["host_port"])
            self.ip = self.host_listen_ip()

    async def get_ip_and_port(self) -> tuple[str, int]:
        if self.uses_host_network:
            return self.ip, self.port
        return await super().get_ip_and_port()

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        await self.remove_share_volumes()

    async def poll(self) -> int | str | None:
        """None while the lab runs; otherwise its exit status, after removing what it left.

        The hub calls ``stop()`` only for a server that still runs, so a lab that died
        (killed from outside, engine restarted) would leave its stopped container and
        its share volumes, passwords included, until the user's next start.
        """
        status = await super().poll()
        if status is not None and self.remove and not self._spawn_pending:
            await self._discard_failed_start()
        return status

    async def remove_share_volumes(self) -> None:
        """Drop this user's Windows-share volumes, so no password stays in Docker's volume store."""
        for name in self.cifs_volume_names():
            try:
                await self.docker("remove_volume", name, force=True)
            except NotFound:
                pass
            except APIError as err:
                self.log.warning("Could not remove share volume %s: %s", name, err.explanation)
