"""LabDockerSpawner through a real hub, proxy and Docker engine (host networking, loopback only).

A lab's container, folders and demo notebooks; what a spawn request may ask for; and
(marked ``security``) what a logged-in user who is not an admin can ask for when starting
a lab, through the user's own API token and the spawn form in a browser session: an image
outside ``allowed_images`` is refused, host paths and privileges in the request body are
ignored, nobody starts someone else's lab, and the hub's secrets never reach a lab.
"""

from __future__ import annotations

import os
import stat
import time

import pytest
import requests

from ..conftest import lab_spawner_config
from ..support.browser import Browser
from ..support.contents import get_file, put_file
from ..support.faults import lab_containers
from ..support.hub import SpawnFailed
from ..support.secrets import container_exposure, process_list

pytestmark = pytest.mark.docker


def test_spawn_write_stop_respawn(lab_hub, lab_root, docker_client, lab_prefix):
    hub = lab_hub
    t0 = time.monotonic()
    hub.spawn("alice")
    spawn_seconds = time.monotonic() - t0
    print(f"\nspawn through the hub: {spawn_seconds:.2f} s")

    containers = docker_client.containers.list(filters={"name": f"{lab_prefix}-alice"})
    assert len(containers) == 1
    attrs = containers[0].attrs
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    assert attrs["HostConfig"]["Privileged"] is False
    assert "no-new-privileges:true" in attrs["HostConfig"]["SecurityOpt"]
    assert attrs["Config"]["User"] == "2100:2100"

    put_file(hub, "alice", "work/notes.txt", "alice was here")
    put_file(hub, "alice", "shared/team.txt", "for everyone")

    hub.stop_server("alice")
    assert docker_client.containers.list(all=True, filters={"name": f"{lab_prefix}-alice"}) == []

    personal = lab_root / "personal_notebooks" / "alice"
    shared = lab_root / "shared_notebooks"
    for path in (personal / "notes.txt", shared / "team.txt"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (2100, 2100), path
    st = personal.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (2100, 2100, 0o700)
    st = shared.stat()
    assert (st.st_uid, st.st_gid) == (2100, 2100)
    assert stat.S_IMODE(st.st_mode) == 0o2775
    assert (personal / "notes.txt").read_text() == "alice was here"

    hub.spawn("alice")
    r = get_file(hub, "alice", "work/notes.txt")
    assert r.status_code == 200 and r.json()["content"] == "alice was here"

    # a second user sees the shared file but not alice's folder
    hub.spawn("bob")
    r = get_file(hub, "bob", "shared/team.txt")
    assert r.status_code == 200 and r.json()["content"] == "for everyone"
    r = hub.user_request("bob", "GET", "/api/contents/work")
    names = {item["name"] for item in r.json()["content"]}
    assert "notes.txt" not in names
    bob = docker_client.containers.list(filters={"name": f"{lab_prefix}-bob"})[0]
    code, out = bob.exec_run(["ls", "/home/jovyan"], user="2100:2100")
    assert b"work" in out and b"shared" in out
    # alice's host folder is not mounted into bob's container at all
    sources = {m["Source"] for m in bob.attrs["Mounts"]}
    assert str(personal) not in sources
    assert str(lab_root / "personal_notebooks" / "bob") in sources


def test_demo_notebooks_copied_once(hub_factory, lab_image, lab_root, lab_prefix, tmp_path):
    demos = tmp_path / "demos"
    (demos / "intro").mkdir(parents=True)
    (demos / "welcome.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    (demos / "intro" / "data.csv").write_text("a,b\n1,2\n")
    hub = hub_factory(
        lab_spawner_config(
            lab_image,
            lab_root,
            lab_prefix,
            f"c.LabDockerSpawner.demo_notebooks_dir = {str(demos)!r}",
        )
    )
    hub.spawn("carol")
    folder = lab_root / "personal_notebooks" / "carol"
    assert (folder / "welcome.ipynb").exists()
    assert (folder / "intro" / "data.csv").stat().st_uid == 2100
    r = get_file(hub, "carol", "work/welcome.ipynb")
    assert r.status_code == 200
    # the user edits a demo; a later spawn must not overwrite it
    (folder / "welcome.ipynb").write_text("edited")
    hub.stop_server("carol")
    (demos / "second.ipynb").write_text("{}")
    hub.spawn("carol")
    assert (folder / "welcome.ipynb").read_text() == "edited"
    assert not (folder / "second.ipynb").exists()


def test_spawn_options_cannot_widen_the_container(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    extra = f"""
c.LabDockerSpawner.mem_limit = "512M"
c.LabDockerSpawner.cpu_limit = 0.5
c.LabDockerSpawner.extra_host_config = {{"privileged": True, "cap_add": ["SYS_ADMIN"]}}
c.LabDockerSpawner.allowed_images = {{"default": {lab_image!r}}}
"""
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))
    hub.create_user("gina")
    # an image outside allowed_images is refused, and nothing is created
    r = hub.api("POST", "/users/gina/server", json={"image": "evil/rootkit:latest"})
    if r.status_code in (201, 202):
        with pytest.raises((SpawnFailed, TimeoutError)):
            hub.wait_ready("gina", 30)
    else:
        assert r.status_code == 400 and "not in allowed list" in r.text
    assert docker_client.containers.list(all=True, filters={"name": f"{lab_prefix}-gina"}) == []
    # host paths, privileges and raw docker options in the spawn request are ignored
    options = {
        "image": "default",
        "volumes": {"/": "/host"},
        "mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}],
        "extra_host_config": {"privileged": True},
        "privileged": True,
    }
    hub.spawn("gina", options=options)
    container = docker_client.containers.list(filters={"name": f"{lab_prefix}-gina"})[0]
    host_config = container.attrs["HostConfig"]
    assert host_config["Privileged"] is False
    assert not host_config.get("CapAdd")
    assert host_config["Memory"] == 512 * 1024 * 1024
    assert host_config["CpuQuota"] == 50_000
    sources = {m["Source"] for m in container.attrs["Mounts"]}
    assert "/" not in sources
    assert sources == {
        str(lab_root / "personal_notebooks" / "gina"),
        str(lab_root / "shared_notebooks"),
        str(lab_root / "packages" / "gina"),
    }
    code, out = container.exec_run(
        ["sh", "-c", "grep NoNewPrivs /proc/self/status"], user="2100:2100"
    )
    assert b"NoNewPrivs:\t1" in out


def test_unwritable_lab_root_fails_in_one_sentence(hub_factory, lab_image, tmp_path, lab_prefix):
    """lab_root on a read-only filesystem: the spawn fails with one sentence and creates nothing."""
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    assert (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)]).returncode
        == 0
    )
    try:
        hub = hub_factory(lab_spawner_config(lab_image, ro / "lab", lab_prefix))
        with pytest.raises((SpawnFailed, TimeoutError)):
            hub.spawn("hank", wait=30)
        failed = hub.progress_events("hank")[-1]
        assert failed["failed"] and "may not write" in failed["message"], failed
        assert os.listdir(ro) == []
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


# --- what a user may ask for, and the hub's secrets (security) -----------------------


@pytest.fixture
def picky_hub(hub_factory, lab_image, lab_root, lab_prefix):
    extra = f"""
c.LabDockerSpawner.allowed_images = {{"default": {lab_image!r}, "again": {lab_image!r}}}
"""
    return hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))


def user_token(hub, user: str) -> str:
    hub.create_user(user)
    r = hub.api("POST", f"/users/{user}/tokens", json={"note": "security test"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def as_user(hub, token: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method,
        f"{hub.url}/hub/api{path}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        **kwargs,
    )


@pytest.mark.security
def test_user_token_cannot_pick_images_or_widen(picky_hub, docker_client, lab_prefix, lab_root):
    hub = picky_hub
    token = user_token(hub, "wes")
    hub.create_user("xena")
    # someone else's lab: not even visible
    r = as_user(hub, token, "POST", "/users/xena/server")
    assert r.status_code in (403, 404), r.text
    for image in ("busybox:latest", "evil/rootkit", "labhub/singleuser-offline:latest"):
        r = as_user(hub, token, "POST", "/users/wes/server", json={"image": image})
        assert r.status_code == 400 and "not in allowed list" in r.text, (image, r.text)
    assert lab_containers(docker_client, lab_prefix) == []
    hostile_options = {
        "image": "again",
        "volumes": {"/etc": "/host-etc", "/var/run/docker.sock": "/docker.sock"},
        "mounts": [{"Type": "bind", "Source": "/root", "Target": "/host-root"}],
        "binds": ["/:/host:rw"],
        "privileged": True,
        "cap_add": ["SYS_ADMIN"],
        "user": "0",
        "network_mode": "container:evil",
        "devices": ["/dev/sda:/dev/sda"],
    }
    r = as_user(hub, token, "POST", "/users/wes/server", json=hostile_options)
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("wes")
    (container,) = lab_containers(docker_client, lab_prefix)
    host_config = container.attrs["HostConfig"]
    assert host_config["Privileged"] is False
    assert not host_config.get("CapAdd")
    assert not host_config.get("Devices")
    assert host_config["NetworkMode"] == "host"
    assert container.attrs["Config"]["User"] == "2100:2100"
    sources = {m["Source"] for m in container.attrs["Mounts"]}
    assert sources == {
        str(lab_root / "personal_notebooks" / "wes"),
        str(lab_root / "shared_notebooks"),
        str(lab_root / "packages" / "wes"),
    }
    code, out = container.exec_run(["id", "-u"])
    assert out.strip() == b"2100"


@pytest.mark.security
def test_spawn_form_cannot_pick_an_image_outside_the_list(
    picky_hub, docker_client, lab_prefix, lab_image
):
    hub = picky_hub
    browser = Browser(hub.url)
    r = browser.login("yan", "lab-dev-password")
    assert r.status_code == 302
    session = browser.session
    form = session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert form.status_code == 200 and "again" in form.text  # the options form lists the aliases
    xsrf = session.cookies.get("_xsrf")
    r = session.post(
        f"{hub.url}/hub/spawn",
        data={"image": "busybox:latest", "_xsrf": xsrf},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code >= 400 or "not in allowed list" in r.text, r.status_code
    time.sleep(1)
    assert lab_containers(docker_client, lab_prefix) == []
    model = hub.api("GET", "/users/yan").json()
    assert not model.get("servers"), model
    # the listed alias starts the configured image
    r = session.post(
        f"{hub.url}/hub/spawn",
        data={"image": "default", "_xsrf": xsrf},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code in (200, 302), r.status_code
    hub.wait_ready("yan")
    (container,) = lab_containers(docker_client, lab_prefix)
    assert container.attrs["Config"]["Image"] == lab_image


@pytest.mark.security
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
