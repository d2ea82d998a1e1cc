"""labhub.spawner.lifecycle's lifecycle under faults: hub crash, a lab killed from outside, racing
spawns, the proxy dying, the Docker engine restarted under running labs.

Every test uses the real engine, a real JupyterHub and configurable-http-proxy on
loopback, and LabDockerSpawner with host networking. "Nothing lost" means: the
files users wrote are there afterwards, byte for byte, and exactly one container
per running lab exists.

The engine restarts run on a private dockerd (the shared one is never touched).
Without live-restore every container stops with the engine: the hub must mark
those labs stopped, leave no container behind and start them again on request.
With ``--live-restore`` the labs keep running through the restart and stay
reachable. In both cases the personal and shared folders are intact.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import pytest
from jupyterhub.utils import url_escape_path

from labhub.lab.names import user_folder_name
from labhub.pool import model as pool

from ..conftest import lab_spawner_config, unavailable
from ..support.contents import put_file, read_file
from ..support.faults import (
    PrivateEngine,
    folder_snapshot,
    lab_containers,
    reliability_config,
)
from ..support.pools import pool_hub, wait_full
from ..support.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.reliability]


def spawn_many(hub, names: list[str]) -> None:
    """Ask for every server at once, then wait until all are ready."""
    for name in names:
        hub.create_user(name)
        r = hub.api("POST", f"/users/{url_escape_path(name)}/server")
        assert r.status_code in (201, 202), r.text
    for name in names:
        hub.wait_ready(name, wait=180)


@pytest.fixture
def fault_hub(hub_factory, lab_image, lab_root, lab_prefix):
    return hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, reliability_config()))


@pytest.mark.slow
def test_hub_sigkill_and_restart_keeps_ten_labs(fault_hub, lab_root, docker_client, lab_prefix):
    hub = fault_hub
    users = [f"crash{i}" for i in range(10)]
    spawn_many(hub, users)
    for user in users:
        put_file(hub, user, "work/before.txt", f"{user} before the crash")
    before = {c.name: c.id for c in lab_containers(docker_client, lab_prefix)}
    assert len(before) == 10

    hub.stop(signal.SIGKILL)
    # a crashed hub leaves its proxy running, as in production
    os.kill(int((hub.workdir / "proxy.pid").read_text().strip()), 0)
    # the labs do not need the hub to keep running
    running = {c.name for c in docker_client.containers.list(filters={"name": lab_prefix})}
    assert running == set(before)

    t0 = time.monotonic()
    hub.start()
    for user in users:
        model = wait_until(lambda u=user: hub.server_model(u), 60, what=f"{user}'s server")
        assert model["ready"], model
    for user in users:
        content = wait_until(
            lambda u=user: read_file(hub, u, "work/before.txt"), 60, what=f"{user} reachable"
        )
        assert content == f"{user} before the crash"
    print(f"\n10 labs reachable again {time.monotonic() - t0:.1f} s after the hub restarted")

    after = {c.name: c.id for c in lab_containers(docker_client, lab_prefix)}
    assert after == before, "a container was replaced, duplicated or orphaned"
    for user in users:
        put_file(hub, user, "work/after.txt", "written after the restart")
        folder = lab_root / "personal_notebooks" / user_folder_name(user)
        assert (folder / "before.txt").read_text() == f"{user} before the crash"
        assert (folder / "after.txt").read_text() == "written after the restart"

    # a clean stop still removes every container
    for user in users:
        hub.stop_server(user)
    assert lab_containers(docker_client, lab_prefix) == []


def test_container_killed_from_outside(fault_hub, lab_root, docker_client, lab_prefix):
    hub = fault_hub
    hub.spawn("dora")
    put_file(hub, "dora", "work/keep.txt", "dora's work")
    (container,) = lab_containers(docker_client, lab_prefix)

    t0 = time.monotonic()
    container.kill()
    # poll_interval is 1 s; allow the hub a few polls and the stop it then runs
    wait_until(lambda: hub.server_model("dora") is None, 15, what="hub notices the dead lab")
    noticed = time.monotonic() - t0
    print(f"\nhub noticed the killed container after {noticed:.1f} s (poll_interval 1 s)")
    assert noticed < 10
    assert "dora" in hub.log_text()

    wait_until(lambda: lab_containers(docker_client, lab_prefix) == [], 15, what="dead lab removed")
    hub.spawn("dora")
    assert read_file(hub, "dora", "work/keep.txt") == "dora's work"
    assert len(lab_containers(docker_client, lab_prefix)) == 1


def test_stale_container_does_not_block_a_new_spawn(fault_hub, docker_client, lab_prefix):
    """A container left by a crash (stopped, same name) is replaced, not reused or fatal."""
    hub = fault_hub
    hub.spawn("eve")
    put_file(hub, "eve", "work/keep.txt", "eve's work")
    (container,) = lab_containers(docker_client, lab_prefix)
    hub.stop(signal.SIGKILL)
    container.stop(timeout=1)  # the lab died while the hub was down: a stopped leftover
    hub.start()
    # the restarted hub polls eve's server, finds it dead and stops it
    wait_until(lambda: hub.server_model("eve") is None, 30, what="restarted hub drops dead lab")
    hub.spawn("eve")
    assert read_file(hub, "eve", "work/keep.txt") == "eve's work"
    (new,) = lab_containers(docker_client, lab_prefix)
    assert new.id != container.id and new.status == "running"


def test_two_spawns_for_one_user_at_once(fault_hub, docker_client, lab_prefix, lab_root):
    hub = fault_hub
    hub.create_user("fay")

    def ask():
        return hub.api("POST", "/users/fay/server")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = [f.result() for f in [pool.submit(ask) for _ in range(4)]]
    codes = sorted(r.status_code for r in answers)
    # one request starts the lab; the others are told it is pending or already running
    assert sum(c in (201, 202) for c in codes) >= 1, [r.text for r in answers]
    assert all(c in (201, 202, 400) for c in codes), [r.text for r in answers]
    hub.wait_ready("fay")
    time.sleep(2)
    assert len(lab_containers(docker_client, lab_prefix)) == 1
    assert os.listdir(lab_root / "personal_notebooks") == ["fay"]
    hub.stop_server("fay")
    assert lab_containers(docker_client, lab_prefix) == []


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0, "created"])
def test_stop_during_spawn_leaves_nothing(fault_hub, docker_client, lab_prefix, lab_root, delay):
    hub = fault_hub
    user = "gus"
    hub.create_user(user)
    r = hub.api("POST", f"/users/{user}/server")
    assert r.status_code in (201, 202), r.text
    if delay == "created":
        wait_until(lambda: lab_containers(docker_client, lab_prefix), 30, interval=0.05)
    else:
        time.sleep(delay)
    r = hub.api("DELETE", f"/users/{user}/server")
    assert r.status_code in (202, 204), r.text
    wait_until(lambda: hub.server_model(user) is None, 60, what="server stopped")
    # give a cancelled spawn the time to finish whatever it was doing
    time.sleep(3)
    assert lab_containers(docker_client, lab_prefix) == [], "a container outlived the stop"
    assert not [n for n in os.listdir(lab_root / "personal_notebooks") if n.startswith(".")]
    # and the user can start again right away
    hub.spawn(user)
    assert len(lab_containers(docker_client, lab_prefix)) == 1
    hub.stop_server(user)


def test_proxy_killed_routes_come_back(fault_hub, docker_client, lab_prefix):
    hub = fault_hub
    hub.spawn("hal")
    put_file(hub, "hal", "work/keep.txt", "hal's work")
    pid = int((hub.workdir / "proxy.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_until(lambda: read_file(hub, "hal", "work/keep.txt") == "hal's work", 60, interval=0.5)
    print(f"\nroute back through a new proxy {time.monotonic() - t0:.1f} s after the kill")
    new_pid = int((hub.workdir / "proxy.pid").read_text().strip())
    assert new_pid != pid
    assert len(lab_containers(docker_client, lab_prefix)) == 1
    # a new lab gets a route on the new proxy too
    hub.spawn("ida")
    r = hub.user_request("ida", "GET", "/api/status")
    assert r.status_code == 200


# --- the Docker engine restarted, on a private dockerd -------------------------------


@pytest.fixture(scope="module")
def private_engine(lab_image):
    engine = PrivateEngine()
    try:
        engine.start()
        engine.load_image(lab_image)
    except RuntimeError as err:
        engine.destroy()
        unavailable(f"a private dockerd could not be started: {err}")
    yield engine
    engine.destroy()


@pytest.fixture
def engine_hub(hub_factory, lab_image, lab_root, lab_prefix, private_engine):
    extra = reliability_config(
        f'c.LabDockerSpawner.client_kwargs = {{"base_url": {private_engine.base_url!r}}}'
    )
    return hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))


def lab_containers_on(engine: PrivateEngine, prefix: str) -> list:
    with engine.client() as client:
        return [c for c in client.containers.list(all=True) if c.name.startswith(prefix)]


@pytest.mark.slow
def test_engine_restart_without_live_restore(engine_hub, private_engine, lab_root, lab_prefix):
    hub = engine_hub
    if private_engine.live_restore:
        private_engine.restart(live_restore=False)
    hub.spawn("ned")
    put_file(hub, "ned", "work/keep.txt", "ned's work")
    put_file(hub, "ned", "shared/team.txt", "team file")
    before = folder_snapshot(lab_root)

    away = private_engine.restart(live_restore=False)
    print(f"\nprivate engine away for {away:.1f} s")
    # the engine stopped the container; the hub sees it on its next poll
    wait_until(lambda: hub.server_model("ned") is None, 30, what="hub marks ned stopped")
    wait_until(lambda: lab_containers_on(private_engine, lab_prefix) == [], 15, what="no leftover")
    assert folder_snapshot(lab_root) == before

    t0 = time.monotonic()
    hub.spawn("ned")
    print(f"ned's lab started again in {time.monotonic() - t0:.1f} s")
    assert read_file(hub, "ned", "work/keep.txt") == "ned's work"
    assert read_file(hub, "ned", "shared/team.txt") == "team file"
    assert len(lab_containers_on(private_engine, lab_prefix)) == 1
    hub.stop_server("ned")
    assert lab_containers_on(private_engine, lab_prefix) == []


@pytest.mark.slow
def test_engine_restart_with_live_restore(engine_hub, private_engine, lab_root, lab_prefix):
    hub = engine_hub
    private_engine.restart(live_restore=True)
    hub.spawn("olga")
    put_file(hub, "olga", "work/keep.txt", "olga's work")
    (container,) = lab_containers_on(private_engine, lab_prefix)
    before = folder_snapshot(lab_root)

    private_engine.stop()
    # the engine is gone, the lab is not: it still answers through the proxy
    assert read_file(hub, "olga", "work/keep.txt") == "olga's work"
    time.sleep(2)  # a couple of hub polls fail against the missing engine
    private_engine.start(live_restore=True)

    time.sleep(3)
    model = hub.server_model("olga")
    assert model is not None and model["ready"], "the hub dropped a lab that kept running"
    assert read_file(hub, "olga", "work/keep.txt") == "olga's work"
    (after,) = lab_containers_on(private_engine, lab_prefix)
    assert after.id == container.id and after.status == "running"
    assert folder_snapshot(lab_root) == before
    put_file(hub, "olga", "work/after.txt", "written after the engine came back")
    assert (lab_root / "personal_notebooks" / "olga" / "after.txt").exists()
    hub.stop_server("olga")
    assert lab_containers_on(private_engine, lab_prefix) == []


@pytest.mark.slow
def test_engine_restart_with_a_full_warm_pool(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, private_engine
):
    """The engine stops labs and waiting containers alike; logins after it get new, working labs."""
    if private_engine.live_restore:
        private_engine.restart(live_restore=False)
    hub = pool_hub(
        hub_factory,
        lab_image,
        lab_root,
        lab_prefix,
        2,
        reliability_config(
            f'c.LabDockerSpawner.client_kwargs = {{"base_url": {private_engine.base_url!r}}}'
        ),
    )
    with private_engine.client() as client:
        wait_full(client, lab_prefix, 2)
    hub.spawn("pia")
    put_file(hub, "pia", "work/keep.txt", "pia's work")
    with private_engine.client() as client:
        before = {c.id for c in client.containers.list(all=True)}
        assert len(before) == 3  # pia's lab and the two waiting after the refill

    private_engine.restart(live_restore=False)
    wait_until(lambda: hub.server_model("pia") is None, 30, what="hub marks pia stopped")
    for user in ("pia", "quinn"):
        hub.spawn(user)
    with private_engine.client() as client:
        labs = {u: client.containers.get(f"{lab_prefix}-{u}").id for u in ("pia", "quinn")}
        assert not set(labs.values()) & before, "a container from before the restart came back"
    assert read_file(hub, "pia", "work/keep.txt") == "pia's work"
    assert hub.user_request("quinn", "GET", "/api/contents/work/keep.txt").status_code == 404
    # the pool is whole again, with new containers, and kept no slot of a dead one
    with private_engine.client() as client:
        waiting = wait_full(client, lab_prefix, 2, wait=180)
    assert len(waiting) == 2 and not {c.id for c in waiting} & before
    for user in ("pia", "quinn"):
        hub.stop_server(user)
    slots = {c.labels[pool.LABEL_SLOT] for c in waiting}
    assert set(os.listdir(pool_root)) <= slots, "a dead container's slot was left behind"
    assert (lab_root / "personal_notebooks" / "pia" / "keep.txt").read_text() == "pia's work"
