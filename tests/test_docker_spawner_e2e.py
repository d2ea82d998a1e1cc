"""LabDockerSpawner through a real hub, proxy and Docker engine (host networking, loopback only)."""

from __future__ import annotations

import stat
import time

import pytest

pytestmark = pytest.mark.docker


def put_file(hub, user, path, content):
    r = hub.user_request(
        user,
        "PUT",
        f"/api/contents/{path}",
        json={"type": "file", "format": "text", "content": content},
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def get_file(hub, user, path):
    return hub.user_request(user, "GET", f"/api/contents/{path}?content=1")


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
    from tests.conftest import lab_spawner_config

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
