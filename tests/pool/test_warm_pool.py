"""The warm pool through a real hub, proxy and Docker engine (host networking, loopback only).

Users in a row each get a pool container of their own, with their own folders and
never another's; a container serves one user once; a hub restart adopts the
waiting containers and hands none out twice; a pool container that died while
waiting is replaced and nobody gets it.
"""

from __future__ import annotations

import os
import secrets
import textwrap

import pytest

from labhub.pool import model as pool
from labhub.pool import mounts as pool_mounts

from ..support.contents import get_file, put_file
from ..support.pools import free_pool, pool_hub, wait_full
from ..support.waiting import wait_until

pytestmark = pytest.mark.docker


def test_five_users_in_a_row_each_get_their_own_folders_from_the_pool(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    hub = pool_hub(hub_factory, lab_image, lab_root, lab_prefix, 2)
    users = ["ann", "ben", "cyd", "dee", "eli"]
    served: dict[str, str] = {}
    for user in users:
        wait_full(docker_client, lab_prefix, 2)
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
    wait_full(docker_client, lab_prefix, 3)
    hub.spawn("ann")
    ann = docker_client.containers.get(f"{lab_prefix}-ann")
    # one waiting container dies (killed from outside); the hub stops while refilling
    dead = free_pool(docker_client, lab_prefix)[0]
    dead.kill()
    hub.stop()
    left = {c.id for c in free_pool(docker_client, lab_prefix)}
    print(f"\nwaiting containers at the restart: {len(left)} (of 3)")

    hub.start()
    wait_full(docker_client, lab_prefix, 3)
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
    wait_full(docker_client, lab_prefix, 1)
    waiting = {c.id for c in free_pool(docker_client, lab_prefix)}
    hub.spawn("ann")
    container = docker_client.containers.get(f"{lab_prefix}-ann")
    assert container.id in waiting
    assert container.attrs["HostConfig"]["NetworkMode"] != "host"
    put_file(hub, "ann", "work/on-the-lab-network.txt", "ok")
    hub.stop_server("ann")
    assert (lab_root / "personal_notebooks" / "ann" / "on-the-lab-network.txt").exists()


@pytest.mark.reliability
def test_a_pool_larger_than_the_machine_stops_short_and_logins_still_get_labs(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    """More waiting containers than memory allows: the pool holds back, users get normal starts."""
    hub = pool_hub(
        hub_factory,
        lab_image,
        lab_root,
        lab_prefix,
        500,
        # more than any test machine has: no waiting container fits beside the labs
        'c.LabDockerSpawner.warm_pool_memory_reserve = "100T"',
    )
    # only the hub can say why it holds back: its one log line is the answer
    wait_until(lambda: "warm pool: holding 0 of 500" in hub.log_text(), 30, what="the hold-back")
    assert "leaves 104857600 MiB to labs (warm_pool_memory_reserve)" in hub.log_text()
    hub.spawn("ann")
    assert "starts without the warm pool: it is empty" in hub.log_text()
    put_file(hub, "ann", "work/normal.txt", "a normal start")
    assert not free_pool(docker_client, lab_prefix)
    hub.stop_server("ann")
    assert (lab_root / "personal_notebooks" / "ann" / "normal.txt").exists()


@pytest.mark.reliability
def test_a_hub_restarted_after_the_upgrade_removes_old_format_pool_containers(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    """Free pool containers were ``{prefix}-pool-{slot}``: gone after a restart, labs kept."""
    hub = pool_hub(hub_factory, lab_image, lab_root, lab_prefix, 2)
    wait_full(docker_client, lab_prefix, 2)
    user = f"pool-{secrets.token_hex(6)}"  # a lab named like an old-format pool container
    hub.spawn(user)
    lab = docker_client.containers.get(f"{lab_prefix}-{user}")
    wait_full(docker_client, lab_prefix, 2)
    hub.stop()
    old = []
    for container in free_pool(docker_client, lab_prefix):
        container.rename(f"{lab_prefix}-pool-{container.labels[pool.LABEL_SLOT]}")
        old.append(container.id)
    hub.start()
    wait_until(
        lambda: (
            not docker_client.containers.list(all=True, filters={"id": old[0]})
            and not docker_client.containers.list(all=True, filters={"id": old[1]})
        ),
        60,
        what="the old-format pool containers removed",
    )
    wait_full(docker_client, lab_prefix, 2)
    lab.reload()
    assert lab.status == "running"
    assert hub.server_model(user)["ready"]
    put_file(hub, user, "work/after-upgrade.txt", "kept")
    hub.stop_server(user)
    assert not [p for p in pool_mounts.mounts_under(str(pool_root)) if p != str(pool_root)]
