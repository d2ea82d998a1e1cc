"""labhub.lab.mounts on the real engine: Windows shares (CIFS) and driver-option volumes.

This kernel has no CIFS, so a cifs volume is created by Docker but cannot be
mounted: exactly the failure path a lab meets when a file server is down. The
same mount path is then shown working with the local driver's bind type. A
share's password never leaks from a failed spawn (marked ``security``).
"""

from __future__ import annotations

import json
import os

import pytest

from labhub.lab.mounts import CifsCredentials, cifs_mount, parse_cifs_share
from labhub.lab.names import user_folder_name

from ..conftest import lab_spawner_config
from ..support.browser import Browser
from ..support.faults import lab_containers
from ..support.hub import SpawnFailed
from ..support.secrets import container_exposure, process_list

pytestmark = pytest.mark.docker


PASSWORD = "S3cret,with=comma"


def share_config(cred_file) -> dict:
    return {
        "name": "finance",
        "device": "//127.0.0.1/finance/{raw_username}",
        "mount_path": "/home/jovyan/finance",
        "credentials": "file",
        "credentials_file": str(cred_file),
        "options": {"vers": "3.0", "port": "1"},
    }


def test_cifs_mount_spec_reaches_the_engine_intact(docker_client, lab_image, lab_prefix):
    share = parse_cifs_share(share_config("/unused"))
    mount = cifs_mount(
        share,
        prefix="labhub",
        username="Dana",
        uid=2100,
        gid=2100,
        credentials=CifsCredentials("svc", PASSWORD, "CORP"),
    )
    mount["Source"] = f"{lab_prefix}-{mount['Source']}"
    # the same HostConfig.Mounts path the spawner uses: the engine creates the volume on create
    container = docker_client.api.create_container(
        lab_image,
        command=["true"],
        name=f"{lab_prefix}-cifs-probe",
        host_config=docker_client.api.create_host_config(mounts=[mount], network_mode="none"),
    )
    try:
        volume = docker_client.volumes.get(mount["Source"])
        assert volume.attrs["Driver"] == "local"
        assert volume.attrs["Options"] == mount["VolumeOptions"]["DriverConfig"]["Options"]
        assert volume.attrs["Options"]["o"].startswith("username=svc,password=S3cret,,with=comma,")
        assert volume.attrs["Labels"]["org.labhub.cifs-share"] == "finance"
        inspect = docker_client.api.inspect_container(container["Id"])
        # credentials live only in the volume's driver options, not in the container
        assert PASSWORD not in json.dumps(inspect["Config"])
    finally:
        docker_client.api.remove_container(container["Id"], force=True)
        docker_client.volumes.get(mount["Source"]).remove()
    with pytest.raises(Exception, match="404|No such volume|not found"):
        docker_client.volumes.get(mount["Source"])


def test_unmountable_share_fails_cleanly(
    hub_factory, lab_image, lab_root, lab_prefix, tmp_path, docker_client
):
    cred = tmp_path / "finance.cred"
    cred.write_text(f"username=svc-lab\npassword={PASSWORD}\ndomain=CORP\n")
    os.chmod(cred, 0o600)
    hub = hub_factory(
        lab_spawner_config(
            lab_image,
            lab_root,
            lab_prefix,
            f"c.LabDockerSpawner.cifs_shares = [{share_config(cred)!r}]\n",
        )
    )
    with pytest.raises((SpawnFailed, TimeoutError)) as info:
        hub.spawn("erin", wait=60)
    if isinstance(info.value, SpawnFailed):
        assert "could not mount its network share volume" in info.value.text
    events = hub.progress_events("erin")
    failed = events[-1]
    assert failed["failed"] is True
    assert (
        f"could not mount its network share volume {lab_prefix}-cifs7-finance-erin"
        in failed["message"]
    ), events
    assert "nothing was started" in failed["message"]
    assert (
        any("Mounting Windows shares: finance" in e["message"] for e in events[:-1])
        or len(events) == 1
    )
    # no half-started container, no volume holding the password, no password in the hub log
    assert docker_client.containers.list(all=True, filters={"name": f"{lab_prefix}-erin"}) == []
    names = [v.name for v in docker_client.volumes.list()]
    assert not [n for n in names if n.startswith(f"{lab_prefix}-cifs7-finance-erin")]
    assert PASSWORD not in hub.log_text()
    assert PASSWORD.replace(",", ",,") not in hub.log_text()
    # the user's folder survived and a later spawn without the share works
    assert (lab_root / "personal_notebooks" / "erin").is_dir()


def test_same_mount_path_with_a_bind_volume(
    hub_factory, lab_image, lab_root, lab_prefix, tmp_path, docker_client
):
    """The mount path a CIFS share would use, served by a local-driver volume of type none/bind."""
    shares = tmp_path / "fileserver"
    user_dir = shares / user_folder_name("fred")
    user_dir.mkdir(parents=True)
    os.chown(user_dir, 2100, 2100)
    (user_dir / "budget.csv").write_text("q1,100\n")
    os.chown(user_dir / "budget.csv", 2100, 2100)
    volume = f"{lab_prefix}-finance-{{username}}"
    conda = tmp_path / "conda-shared"
    (conda / "bin").mkdir(parents=True)
    (conda / "bin" / "tool").write_text("#!/bin/sh\necho shared tool\n")
    extra = f"""
c.LabDockerSpawner.lab_read_only_volumes = {{{str(conda)!r}: "/opt/conda-shared"}}
c.LabDockerSpawner.lab_volumes = {{{volume!r}: "/home/jovyan/finance"}}
c.LabDockerSpawner.volume_driver_options = {{
    {volume!r}: {{"type": "none", "o": "bind", "device": {str(shares)!r} + "/{{username}}"}}
}}
"""
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))
    name = hub.spawn("fred")["name"]
    r = hub.user_request(name, "GET", "/api/contents/finance/budget.csv?content=1")
    assert r.status_code == 200 and r.json()["content"] == "q1,100\n"
    r = hub.user_request(
        name,
        "PUT",
        "/api/contents/finance/q2.csv",
        json={"type": "file", "format": "text", "content": "q2,200\n"},
    )
    assert r.status_code == 201, r.text
    assert (user_dir / "q2.csv").read_text() == "q2,200\n"
    assert (user_dir / "q2.csv").stat().st_uid == 2100
    # one tree for everyone, readable, and nobody can change it for the others
    container = docker_client.containers.list(filters={"name": f"{lab_prefix}-{name}"})[0]
    code, out = container.exec_run(["cat", "/opt/conda-shared/bin/tool"], user="2100:2100")
    assert code == 0 and b"shared tool" in out
    code, out = container.exec_run(["sh", "-c", "echo x > /opt/conda-shared/bin/tool"], user="0")
    assert code != 0 and b"Read-only file system" in out
    folder = user_folder_name(name)
    vol = docker_client.volumes.get(f"{lab_prefix}-finance-{folder}")
    assert vol.attrs["Options"] == {"type": "none", "o": "bind", "device": str(user_dir)}
    hub.stop_server(name)


def test_share_mounted_with_the_users_own_login(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    """credentials="auth_state": the user's login name and password from the (encrypted) auth_state."""
    import secrets

    share = {
        "name": "home",
        "device": "//127.0.0.1/homes/{raw_username}",
        "mount_path": "/home/jovyan/windows-home",
        "credentials": "auth_state",
    }
    extra = f"""
from jupyterhub.auth import DummyAuthenticator
from labhub.spawner.docker import LabDockerSpawner


class DirectoryLikeAuthenticator(DummyAuthenticator):
    # stands in for LabAuthenticator(store_password=True): same auth_state keys
    async def authenticate(self, handler, data):
        return {{
            "name": data["username"].lower(),
            "auth_state": {{"password": data["password"], "login_name": "CORP-" + data["username"], "domain": "CORP"}},
        }}


class KeepVolumes(LabDockerSpawner):
    # keep the failed share volume so the test can read what reached the engine
    async def remove_share_volumes(self):
        pass


c.JupyterHub.authenticator_class = DirectoryLikeAuthenticator
c.JupyterHub.spawner_class = KeepVolumes
c.Authenticator.enable_auth_state = True
c.KeepVolumes.cifs_shares = [{share!r}]
c.KeepVolumes.image = {lab_image!r}
c.KeepVolumes.network_name = "host"
c.KeepVolumes.lab_root = {str(lab_root)!r}
c.KeepVolumes.prefix = {lab_prefix!r}
"""
    hub = hub_factory(
        lab_spawner_config(lab_image, lab_root, lab_prefix, extra),
        env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)},
    )
    password = "Users-own,pass"
    r = Browser(hub.url).login("Ivy", password)
    assert r.status_code == 302, r.text
    with pytest.raises((SpawnFailed, TimeoutError)):
        hub.spawn("ivy", wait=60)
    volume = docker_client.volumes.get(f"{lab_prefix}-cifs4-home-ivy")
    try:
        options = volume.attrs["Options"]
        assert options["device"] == "//127.0.0.1/homes/ivy"
        assert options["o"].startswith(
            "username=CORP-Ivy,password=Users-own,,pass,domain=CORP,uid=2100"
        )
    finally:
        volume.remove(force=True)
    assert password not in hub.log_text()


@pytest.mark.security
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


@pytest.mark.security
def test_two_users_whose_share_and_name_join_alike_get_their_own_volumes(
    docker_client, lab_image, lab_prefix
):
    """Share ``home`` + user ``archive-bob`` and share ``home-archive`` + user ``bob``.

    Joined with "-" both were one volume name, and the engine gave the second user the
    first one's volume: its device and its owner's password.
    """
    pairs = [("home", "archive-bob", "bob-pass"), ("home-archive", "bob", "other-pass")]
    containers, volumes = [], []
    try:
        for share_name, user, password in pairs:
            share = parse_cifs_share(
                {**share_config("/unused"), "name": share_name, "device": f"//h/{share_name}"}
            )
            mount = cifs_mount(
                share,
                prefix=lab_prefix,
                username=user,
                uid=2100,
                gid=2100,
                credentials=CifsCredentials(user, password),
            )
            volumes.append(mount["Source"])
            created = docker_client.api.create_container(
                lab_image,
                command=["true"],
                host_config=docker_client.api.create_host_config(
                    mounts=[mount], network_mode="none"
                ),
            )
            containers.append(created["Id"])
        assert volumes[0] != volumes[1]
        for (share_name, user, password), name in zip(pairs, volumes, strict=True):
            options = docker_client.volumes.get(name).attrs["Options"]
            assert options["device"] == f"//h/{share_name}"
            assert f"username={user},password={password}," in options["o"]
    finally:
        for container in containers:
            docker_client.api.remove_container(container, force=True)
        for name in set(volumes):
            docker_client.volumes.get(name).remove()
