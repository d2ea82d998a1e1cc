"""Secrets stay secret: never in the hub log, a lab's environment or labels, or the process list.

Covered here: the cookie secret, the proxy's auth token, and a Windows-share
password from a credentials file. Every place is read on the real system:
``docker inspect`` of the lab container, every ``/proc/<pid>/cmdline`` on the
machine, the hub's log and API answers, Docker's volume store.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from .conftest import lab_spawner_config
from .support.faults import lab_containers
from .support.hub import SpawnFailed

pytestmark = [pytest.mark.docker]


def process_list() -> str:
    """Every command line on the machine, as ``ps`` would show them."""
    lines = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # the process ended while we looked
        lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return "\n".join(lines)


def container_exposure(container) -> str:
    """What anyone with ``docker inspect`` sees of a container: its env, labels, command, mounts."""
    config = container.attrs["Config"]
    return "\n".join(
        [
            *(config.get("Env") or []),
            *(f"{k}={v}" for k, v in (config.get("Labels") or {}).items()),
            " ".join(config.get("Cmd") or []),
            " ".join(config.get("Entrypoint") or []),
            repr(container.attrs["HostConfig"].get("Mounts")),
            repr(container.attrs.get("Mounts")),
        ]
    )


def test_hub_secrets_stay_out_of_labs_logs_and_processes(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix))
    hub.spawn("una")
    r = hub.user_request(
        "una",
        "PUT",
        "/api/contents/work/x.txt",
        json={"type": "file", "format": "text", "content": "x"},
    )
    assert r.status_code in (200, 201)

    cookie_file = hub.workdir / "cookie_secret"
    cookie_secret = cookie_file.read_text().strip()
    assert len(cookie_secret) >= 32
    assert stat.S_IMODE(cookie_file.stat().st_mode) == 0o600
    secrets = {"cookie secret": cookie_secret, "proxy token": hub.proxy_token}

    (container,) = lab_containers(docker_client, lab_prefix)
    exposed = container_exposure(container)
    # the lab holds its own API token, never the hub's secrets
    assert "JUPYTERHUB_API_TOKEN=" in exposed
    procs = process_list()
    log = hub.log_text()
    model = hub.api("GET", "/users/una").text
    for what, secret in secrets.items():
        assert secret not in exposed, f"{what} in the lab container's inspect output"
        assert secret not in procs, f"{what} in the process list"
        assert secret not in log, f"{what} in the hub log"
        assert secret not in model, f"{what} in the REST API"
    # the lab's own token is not written to the hub's log either
    token = next(
        e.split("=", 1)[1]
        for e in container.attrs["Config"]["Env"]
        if e.startswith("JUPYTERHUB_API_TOKEN=")
    )
    assert token not in log
    # and the container gets nothing that would reach the engine or the host
    assert "DOCKER_HOST" not in exposed and "/var/run/docker.sock" not in exposed
    hub.stop_server("una")


def test_share_password_stays_out_of_everything(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client, tmp_path
):
    """A CIFS share cannot mount on this kernel: the failed spawn must not spill its password."""
    password = "Very$ecret-Share-Pw"
    cred = tmp_path / "share.cred"
    cred.write_text(f"username=svc-lab\npassword={password}\n")
    cred.chmod(0o600)
    extra = f"""
c.LabDockerSpawner.cifs_shares = [{{
    "name": "finance",
    "device": "//127.0.0.1/finance",
    "mount_path": "/home/jovyan/finance",
    "credentials": "file",
    "credentials_file": {str(cred)!r},
}}]
"""
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))
    answer = ""
    with pytest.raises((SpawnFailed, TimeoutError)) as failed:
        hub.spawn("vic", wait=60)
    answer = str(failed.value)
    progress = hub.api("GET", "/users/vic/server/progress", stream=True, timeout=10)
    answer += progress.text if progress.status_code == 200 else ""
    assert password not in answer
    assert password not in hub.log_text()
    assert password not in process_list()
    for container in lab_containers(docker_client, lab_prefix):
        assert password not in container_exposure(container)
    for volume in docker_client.volumes.list():
        assert password not in repr(volume.attrs.get("Options")), volume.name
