"""Which containers the pool takes for its own, and what may turn it off (a fake engine, no daemon)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from labhub.lab.names import lab_object_name, pool_container_name
from labhub.lab.settings import LabSettings
from labhub.pool import claimer as pool_claimer
from labhub.pool import model as pool
from labhub.pool import mounts as pool_mounts
from labhub.pool import warm_pool

from ..support.pools import pool_from_settings

SETTINGS = LabSettings(lab_root="/srv/lab", image="lab:1", network_name="labhub-labs")
SLOT = "0123456789ab"
OTHER_SLOT = "fedcba987654"


class FakeEngine:
    """The Docker calls the pool makes, answered from a list of containers; removals recorded."""

    def __init__(self, containers: list[dict], exit_code: int = 0):
        self.listing = containers
        self.removed: list[str] = []
        self.exit_code = exit_code
        self.logs = {}  # by name; a waiting container's otherwise

    async def __call__(self, method, *args, **kwargs):
        if method == "containers":
            return self.listing
        if method == "logs":
            return self.logs.get(args[0], b"labhub-pool: ready\n")
        if method == "inspect_container":
            return {"Id": args[0], "State": {"Running": True, "Pid": 0}}
        if method == "remove_container":
            self.removed.append(args[0])
        if method == "exec_create":
            return {"Id": "exec"}
        if method == "exec_start":
            return b"usercustomize says 86"
        if method == "exec_inspect":
            return {"ExitCode": self.exit_code}
        return None


def make_pool(engine: FakeEngine) -> warm_pool.WarmPool:
    return pool_from_settings(SETTINGS, engine, size=1, pool_dir="/nonexistent/.warm-pool")


def listed(name: str, slot: str, key: str) -> dict:
    return {
        "Names": [f"/{name}"],
        "State": "running",
        "Labels": {pool.LABEL_POOL: key, pool.LABEL_SLOT: slot},
    }


@pytest.mark.security
def test_labs_of_pool_shaped_usernames_are_never_taken_for_pool_leftovers():
    async def scenario():
        engine = FakeEngine([])
        running = make_pool(engine)
        # labs taken from the pool keep its labels and the slot of the container they were
        users = [lab_object_name("labhub", u) for u in ("pool-x", f"pool-{SLOT}", "ann")]
        engine.listing = [listed(name, OTHER_SLOT, running.key) for name in users]
        free = pool_container_name("labhub", SLOT)
        engine.listing.append(listed(free, SLOT, running.key))
        # a free container named by a hub before the upgrade, and one of another hub
        engine.listing.append(listed("labhub-pool-aaaaaaaaaaaa", "aaaaaaaaaaaa", running.key))
        engine.listing.append(listed("other--pool-bbbbbbbbbbbb", "bbbbbbbbbbbb", running.key))
        # user pool-cccccccccccc's lab, taken (by chance) from the old-format container of its name
        taken = "labhub-pool-cccccccccccc"
        engine.listing.append(listed(taken, "cccccccccccc", running.key))
        engine.logs[taken] = b"labhub-pool: ready\nlabhub-pool: starting the server\n"
        await running._adopt()
        assert engine.removed == ["labhub-pool-aaaaaaaaaaaa"]
        assert running.in_state(warm_pool.WAITING) == [free]
        engine.removed.clear()
        await running._check_health()
        assert engine.removed == []
        running.containers.clear()  # a free container this pool does not hold is a leftover
        await running._check_health()
        assert engine.removed == [free]

    asyncio.run(scenario())


@pytest.mark.security
def test_a_failed_hand_over_discards_its_container_and_leaves_the_pool_on(monkeypatch):
    monkeypatch.setattr(pool_mounts, "bind_into_slot", lambda source, target, ro: (1, 2))
    monkeypatch.setattr(pool_mounts, "release_slot", lambda pool_dir, slot: None)

    async def scenario():
        engine = FakeEngine([], exit_code=pool.WRONG_MOUNT_EXIT)
        running = make_pool(engine)
        lab = pool.build_lab(SETTINGS, "mal", command=[pool.SERVER_COMMAND])
        claim = pool_claimer.Claim(
            slot=SLOT,
            container_id="labhub-mal",
            pool=running,
            binds=(
                pool.SlotBind(0, "/srv/lab/personal_notebooks/mal", "/home/jovyan/work", False),
            ),
            lab=lab,
        )
        claimer = pool_claimer.WarmPoolClaimer(
            pool_claimer.PoolSettings(size=1),
            docker=engine,
            create_host_config=dict,
            log=logging.getLogger("test"),
        )
        assert not await claimer.hand_over(claim, "mal", 30)
        assert engine.removed == ["labhub-mal"]
        assert not running.disabled

    asyncio.run(scenario())
