"""The warm pool through a real hub, proxy and Docker engine (host networking, loopback only).

Users in a row each get a pool container of their own, with their own folders and
never another's; a container serves one user once; a hub restart adopts the
waiting containers and hands none out twice; a pool container that died while
waiting is replaced and nobody gets it.
"""

from __future__ import annotations

import os
import textwrap
import time

import pytest

from labhub import pool, pool_mounts

from .conftest import lab_spawner_config
from .support.contents import get_file, put_file

pytestmark = pytest.mark.docker


@pytest.fixture
def pool_root(lab_root):
    """The pool folder; whatever the hub left mounted under it is released at the end."""
    yield lab_root / ".warm-pool"
    for point in pool_mounts.mounts_under(str(lab_root)):
        os.system(f"umount -l {point!s} 2>/dev/null")  # noqa: S605 (test cleanup, our own path)


def pool_hub(hub_factory, lab_image, lab_root, prefix, size, extra=""):
    config = f"""
    # labhub's authenticator starts the pool with the hub, before the first login
    c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
    c.LabAuthenticator.mode = "dummy"
    c.LabAuthenticator.dummy_password = "lab-dev-password"
    c.LabDockerSpawner.warm_pool_size = {size}
    c.JupyterHub.cleanup_servers = False
    {extra}
    """
    return hub_factory(lab_spawner_config(lab_image, lab_root, prefix, config))


def free_pool(docker_client, prefix) -> list:
    return [
        c
        for c in docker_client.containers.list(filters={"label": pool.LABEL_POOL})
        if pool.is_pool_container_name(prefix, c.name)
    ]


def wait_full(hub, size, times=1, wait=120.0):
    """Wait until the hub has said ``times`` times that its pool of ``size`` is full."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if hub.log_text().count(f"warm pool: {size}/{size} ready") >= times:
            return
        time.sleep(0.1)
    raise AssertionError(f"pool not full after {wait} s:\n{hub.log_tail(40)}")


def test_five_users_in_a_row_each_get_their_own_folders_from_the_pool(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    hub = pool_hub(hub_factory, lab_image, lab_root, lab_prefix, 2)
    users = ["ann", "ben", "cyd", "dee", "eli"]
    served: dict[str, str] = {}
    for number, user in enumerate(users, 1):
        wait_full(hub, 2, times=number)
        waiting = {c.id for c in free_pool(docker_client, lab_prefix)}
        hub.spawn(user)
        container = docker_client.containers.get(f"{lab_prefix}-{user}")
        assert container.id in waiting, f"{user}'s lab did not come from the pool"
        assert container.id not in served.values()
        served[user] = container.id
        assert container.labels[pool.LABEL_SLOT]
        # the token reached the server through the hand-over, not the container's settings
        assert not any("TOKEN" in e for e in container.attrs["Config"]["Env"])
        put_file(hub, user, f"work/{user}.txt", f"{user}'s notes")
        for other in served:
            if other != user:
                assert get_file(hub, user, f"work/{other}.txt").status_code == 404
        assert get_file(hub, user, f"work/{user}.txt").json()["content"] == f"{user}'s notes"
        put_file(hub, user, f"shared/from-{user}.txt", "team")
    for user in users:
        hub.stop_server(user)
        path = lab_root / "personal_notebooks" / user / f"{user}.txt"
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (2100, 2100)
        assert path.read_text() == f"{user}'s notes"
        others = {f"{u}.txt" for u in users if u != user}
        assert not others & set(os.listdir(lab_root / "personal_notebooks" / user))
    assert len(set(served.values())) == 5
    # every slot of a stopped lab is unmounted and gone; only the waiting containers' remain
    waiting = {c.labels[pool.LABEL_SLOT] for c in free_pool(docker_client, lab_prefix)}
    assert set(os.listdir(pool_root)) <= waiting
    assert not [p for p in pool_mounts.mounts_under(str(pool_root)) if p != str(pool_root)]
    assert "came from the warm pool" in hub.log_text()


@pytest.mark.reliability
def test_a_hub_restart_with_a_half_full_pool_hands_nothing_out_twice(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    hub = pool_hub(hub_factory, lab_image, lab_root, lab_prefix, 3)
    wait_full(hub, 3)
    hub.spawn("ann")
    ann = docker_client.containers.get(f"{lab_prefix}-ann")
    # one waiting container dies (killed from outside); the hub stops while refilling
    dead = free_pool(docker_client, lab_prefix)[0]
    dead.kill()
    hub.stop()
    left = {c.id for c in free_pool(docker_client, lab_prefix)}
    print(f"\nwaiting containers at the restart: {len(left)} (of 3)")

    hub.start()
    wait_full(hub, 3)
    assert "adopted" in hub.log_text()
    assert hub.server_model("ann")["ready"]
    put_file(hub, "ann", "work/after-restart.txt", "still mine")
    assert not docker_client.containers.list(all=True, filters={"id": dead.id})

    ids = {ann.id}
    for user in ("ben", "cyd"):
        hub.spawn(user)
        container = docker_client.containers.get(f"{lab_prefix}-{user}")
        assert container.id not in ids, "a container was handed out twice"
        ids.add(container.id)
        assert get_file(hub, user, "work/after-restart.txt").status_code == 404
    assert (lab_root / "personal_notebooks" / "ann" / "after-restart.txt").read_text() == (
        "still mine"
    )
    for user in ("ann", "ben", "cyd"):
        hub.stop_server(user)
    assert (lab_root / "personal_notebooks" / "ann" / "after-restart.txt").exists()
    assert not [p for p in pool_mounts.mounts_under(str(pool_root)) if p != str(pool_root)]


def test_the_pool_under_configure_defaults_serves_labs_on_the_isolated_network(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    config = f"""
    import labhub

    c.LabDockerSpawner.prefix = {lab_prefix!r}
    c.LabDockerSpawner.pull_policy = "never"
    c.LabDockerSpawner.warm_pool_size = 1
    labhub.configure(
        c,
        lab_root={str(lab_root)!r},
        image={lab_image!r},
        auth_mode="dummy",
        dummy_password="lab-dev-password",
    )
    """
    hub = hub_factory(textwrap.dedent(config))
    wait_full(hub, 1)
    waiting = {c.id for c in free_pool(docker_client, lab_prefix)}
    hub.spawn("ann")
    container = docker_client.containers.get(f"{lab_prefix}-ann")
    assert container.id in waiting
    assert container.attrs["HostConfig"]["NetworkMode"] != "host"
    put_file(hub, "ann", "work/on-the-lab-network.txt", "ok")
    hub.stop_server("ann")
    assert (lab_root / "personal_notebooks" / "ann" / "on-the-lab-network.txt").exists()
