"""The Docker engine restarted under running labs, on a private dockerd (the shared one is never touched).

Without live-restore every container stops with the engine: the hub must mark
those labs stopped, leave no container behind and start them again on request.
With ``--live-restore`` the labs keep running through the restart and stay
reachable. In both cases the personal and shared folders are intact.
"""

from __future__ import annotations

import time

import pytest

from .conftest import lab_spawner_config, unavailable
from .support.faults import PrivateEngine, folder_snapshot, reliability_config, wait_until
from .test_reliability_hub import put_file, read_file, server_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]


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
    wait_until(lambda: server_model(hub, "ned") is None, 30, what="hub marks ned stopped")
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
    model = server_model(hub, "olga")
    assert model is not None and model["ready"], "the hub dropped a lab that kept running"
    assert read_file(hub, "olga", "work/keep.txt") == "olga's work"
    (after,) = lab_containers_on(private_engine, lab_prefix)
    assert after.id == container.id and after.status == "running"
    assert folder_snapshot(lab_root) == before
    put_file(hub, "olga", "work/after.txt", "written after the engine came back")
    assert (lab_root / "personal_notebooks" / "olga" / "after.txt").exists()
    hub.stop_server("olga")
    assert lab_containers_on(private_engine, lab_prefix) == []
