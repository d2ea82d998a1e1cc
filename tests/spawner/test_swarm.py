"""LabSwarmSpawner on a real one-node swarm (services on the host network, loopback only)."""

from __future__ import annotations

import contextlib
import os
import time

import pytest
from jupyterhub.utils import url_escape_path

from ..conftest import lab_spawner_config
from ..support.contents import get_file, put_file
from ..support.hub import UserRejected
from ..support.names import HOSTILE_USERNAMES

pytestmark = [pytest.mark.docker, pytest.mark.swarm]


def swarm_config(image, lab_root, prefix, extra=""):
    return lab_spawner_config(image, lab_root, prefix, extra).replace(
        "LabDockerSpawner", "LabSwarmSpawner"
    )


def services(docker_client, prefix):
    return [s for s in docker_client.services.list() if s.name.startswith(prefix)]


def test_spawn_write_stop_respawn_on_swarm(
    swarm, hub_factory, lab_image, lab_root, lab_prefix, docker_client, tmp_path
):
    lab_root.mkdir()  # lab_root is the NFS mount every node has; the folder task makes the rest
    nfs_like = tmp_path / "team-data"
    nfs_like.mkdir()
    os.chown(nfs_like, 2100, 2100)  # as the export of a real NFS server would be
    extra = f"""
c.LabSwarmSpawner.placement_constraints = ["node.role == manager"]
c.LabSwarmSpawner.lab_volumes = {{"{lab_prefix}-team-{{username}}": "/home/jovyan/team"}}
c.LabSwarmSpawner.volume_driver_options = {{
    "{lab_prefix}-team-{{username}}": {{"type": "none", "o": "bind", "device": {str(nfs_like)!r}}}
}}
c.LabSwarmSpawner.mem_limit = "1G"
"""
    hub = hub_factory(swarm_config(lab_image, lab_root, lab_prefix, extra))
    t0 = time.monotonic()
    hub.spawn("alice")
    print(f"\nswarm spawn: {time.monotonic() - t0:.2f} s")
    [service] = services(docker_client, lab_prefix)
    spec = service.attrs["Spec"]["TaskTemplate"]
    assert spec["Placement"]["Constraints"] == ["node.role == manager"]
    assert spec["Resources"]["Limits"]["MemoryBytes"] == 1024**3
    assert spec["ContainerSpec"]["User"] == "2100:2100"
    mounts = {m["Target"]: m for m in spec["ContainerSpec"]["Mounts"]}
    # a named volume with driver options reaches the task intact: not rewritten to a bind
    team = mounts["/home/jovyan/team"]
    assert team["Type"] == "volume"
    assert team["VolumeOptions"]["DriverConfig"] == {
        "Name": "local",
        "Options": {"type": "none", "o": "bind", "device": str(nfs_like)},
    }
    assert mounts["/home/jovyan/work"]["Source"] == str(lab_root / "personal_notebooks" / "alice")
    # the task's container got the same mounts
    [task] = service.tasks(filters={"desired-state": "running"})
    container = docker_client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    assert {m["Destination"] for m in container.attrs["Mounts"]} >= {
        "/home/jovyan/work",
        "/home/jovyan/shared",
        "/home/jovyan/team",
    }

    folder = (lab_root / "personal_notebooks" / "alice").stat()
    assert (folder.st_uid, folder.st_gid, folder.st_mode & 0o777) == (2100, 2100, 0o700)
    assert [s for s in services(docker_client, lab_prefix) if "_folder-" in s.name] == []

    put_file(hub, "alice", "work/notes.txt", "on the swarm")
    put_file(hub, "alice", "shared/team.txt", "for everyone")
    put_file(hub, "alice", "team/data.txt", "on the volume")
    hub.stop_server("alice")
    assert services(docker_client, lab_prefix) == []
    for path in (
        lab_root / "personal_notebooks/alice/notes.txt",
        lab_root / "shared_notebooks/team.txt",
        nfs_like / "data.txt",
    ):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (2100, 2100), path
    hub.spawn("alice")
    r = get_file(hub, "alice", "work/notes.txt")
    assert r.status_code == 200 and r.json()["content"] == "on the swarm"
    hub.stop_server("alice")


def test_folder_created_by_a_task_on_the_node(
    swarm, hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    extra = 'c.LabSwarmSpawner.folder_creation = "task"\n'  # the default, said out loud
    # the hub does not create anything itself: only the root folders exist, owned by the lab
    from labhub.lab.folders import ensure_lab_folders

    ensure_lab_folders(
        str(lab_root / "personal_notebooks"), str(lab_root / "shared_notebooks"), 2100, 2100
    )
    hub = hub_factory(swarm_config(lab_image, lab_root, lab_prefix, extra))
    name = hub.spawn("Bob Task")["name"]
    from labhub.lab.names import user_folder_name

    folder = lab_root / "personal_notebooks" / user_folder_name(name)
    st = folder.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (2100, 2100, 0o700)
    put_file(hub, name, "work/x.txt", "made by the lab")
    assert (folder / "x.txt").stat().st_uid == 2100
    hub.stop_server(name)
    assert services(docker_client, lab_prefix) == []


def test_extra_placement_constraints_reach_the_service(
    swarm, hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    """Constraints from placement_constraints and extra_placement_spec are both in the spec."""
    lab_root.mkdir()
    extra = """
c.LabSwarmSpawner.placement_constraints = ["node.role == manager"]
c.LabSwarmSpawner.extra_placement_spec = {"constraints": ["node.platform.os == linux"]}
c.LabSwarmSpawner.extra_container_spec = {"cap_add": ["SYS_ADMIN"], "init": True}
"""
    hub = hub_factory(swarm_config(lab_image, lab_root, lab_prefix, extra))
    hub.spawn("carla")
    [service] = services(docker_client, lab_prefix)
    spec = service.attrs["Spec"]["TaskTemplate"]
    assert spec["Placement"]["Constraints"] == ["node.role == manager", "node.platform.os == linux"]
    assert spec["ContainerSpec"]["Init"] is True  # the override arrived
    assert "CapabilityAdd" not in spec["ContainerSpec"]  # and the hardening after it
    hub.stop_server("carla")


def test_an_override_swarm_cannot_take_stops_the_hub_in_one_sentence(
    swarm, hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    lab_root.mkdir()
    extra = """
c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
c.LabAuthenticator.mode = "dummy"
c.LabAuthenticator.dummy_password = "lab-dev-password"
c.LabSwarmSpawner.extra_placement_spec = {"constrains": ["node.role == manager"]}
"""
    hub = hub_factory(swarm_config(lab_image, lab_root, lab_prefix, extra), start=False)
    with pytest.raises(RuntimeError, match="hub exited"):
        hub.start(wait=30)
    log = hub.log_text()
    assert "Traceback" not in log
    [reason] = [line for line in log.splitlines() if "extra_placement_spec" in line]
    assert "constrains" in reason and "did you mean constraints" in reason
    assert services(docker_client, lab_prefix) == []


@pytest.mark.slow
@pytest.mark.security
def test_hostile_names_on_swarm_are_served_or_refused(
    swarm, hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    """The whole hostile-name corpus on a one-node swarm: a lab or a 4xx, never a 500.

    Spawns go in batches so the corpus takes about a minute; each lab is checked to
    answer as its own user and stopped again.
    """
    lab_root.mkdir()
    hub = hub_factory(swarm_config(lab_image, lab_root, lab_prefix))
    for name in HOSTILE_USERNAMES:
        with contextlib.suppress(UserRejected):
            hub.create_user(name)
    # the hub's own names (normalised, duplicates merged); a NUL name is refused at spawn
    users = [u["name"] for u in hub.api("GET", "/users").json() if u["name"] != "tests"]
    users = [u for u in users if "\x00" not in u]
    served = 0
    for start in range(0, len(users), 8):
        batch = users[start : start + 8]
        for user in batch:
            r = hub.api("POST", f"/users/{url_escape_path(user)}/server")
            assert r.status_code in (201, 202), f"{user!r}: {r.status_code} {r.text[:300]}"
        for user in batch:
            hub.wait_ready(user, wait=180)
            r = hub.user_request(user, "GET", "/api/contents/work")
            assert r.status_code == 200, f"{user!r}: {r.status_code}"
            served += 1
        names = {s.name for s in services(docker_client, lab_prefix)}
        assert len(names) == len(batch)  # one service each, none shared
        for user in batch:
            hub.stop_server(user)
    assert services(docker_client, lab_prefix) == []
    print(f"\n{len(HOSTILE_USERNAMES)} hostile names on Swarm: {served} served, none a 500")
