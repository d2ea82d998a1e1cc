"""The warm pool against its users, through a real hub and Docker engine (second review, issue 22).

A read-only folder stays read-only in a lab from the pool; a user's own code cannot
switch the pool off for everyone; a username shaped like a pool container's name
cannot get its lab removed as a pool leftover.
"""

from __future__ import annotations

import os
import secrets
import time

import pytest

from ..support.pools import free_pool, pool_hub, ready_pool, wait_full
from ..support.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.security]

LAB_UID = 2100


def _waiting_ids(client, prefix) -> set[str]:
    return {c.id for c in free_pool(client, prefix)}


def test_the_read_only_pool_volume_is_read_only_in_a_lab_from_the_pool(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    """Finding 3: a per-user ``lab_read_only_volumes`` folder reached through the pool."""
    readonly = lab_root / "readonly"
    folder = readonly / "ann"
    os.makedirs(folder)
    (folder / "given.txt").write_text("read me")
    # the lab uid owns it: only the mount's read-only flag can stop a write
    for path in (folder, folder / "given.txt"):
        os.chown(path, LAB_UID, LAB_UID)
    extra = (
        f"c.LabDockerSpawner.lab_read_only_volumes = "
        f"{{{str(readonly / '{username}')!r}: '/home/jovyan/readonly'}}\n"
    )
    hub = pool_hub(hub_factory, lab_image, lab_root, lab_prefix, 1, extra)
    wait_full(docker_client, lab_prefix, 1)
    waiting = _waiting_ids(docker_client, lab_prefix)
    hub.spawn("ann")
    lab = docker_client.containers.get(f"{lab_prefix}-ann")
    assert lab.id in waiting, f"ann's lab did not come from the pool:\n{hub.log_tail()}"
    read = lab.exec_run(["cat", "/home/jovyan/readonly/given.txt"], user=f"{LAB_UID}")
    assert read.exit_code == 0 and read.output == b"read me"
    for command in (
        "echo written > /home/jovyan/readonly/new.txt",
        "echo changed > /home/jovyan/readonly/given.txt",
    ):
        wrote = lab.exec_run(["sh", "-c", command], user=f"{LAB_UID}")
        print(f"\n{command!r}: exit {wrote.exit_code}: {wrote.output.decode().strip()}")
        assert wrote.exit_code != 0
        assert b"Read-only file system" in wrote.output
    assert not (folder / "new.txt").exists()
    assert (folder / "given.txt").read_text() == "read me"
    hub.stop_server("ann")


def test_a_user_cannot_switch_the_pool_off_for_everyone(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    """Finding 4: a ``usercustomize.py`` in the package folder exits 86 in any ``python3 -c``.

    ``os._exit``: an exception while ``site`` starts is reported as exit code 1.
    """
    hub = pool_hub(hub_factory, lab_image, lab_root, lab_prefix, 2)
    wait_full(docker_client, lab_prefix, 2)
    hub.spawn("mal")
    lab = docker_client.containers.get(f"{lab_prefix}-mal")
    # only a command line's python3 -c exits: mal's own server still starts normally
    plant = (
        "import os, site\n"
        "p = site.getusersitepackages()\n"
        "os.makedirs(p, exist_ok=True)\n"
        "with open(os.path.join(p, 'usercustomize.py'), 'w') as f:\n"
        "    f.write('import os, sys\\nif sys.argv[:1] == [\"-c\"]:\\n    os._exit(86)\\n')\n"
    )
    planted = lab.exec_run(
        ["python3", "-c", plant],
        user=f"{LAB_UID}",
        environment={"PYTHONUSERBASE": "/opt/labhub/packages"},
    )
    assert planted.exit_code == 0, planted.output
    hub.stop_server("mal")

    wait_full(docker_client, lab_prefix, 2)
    waiting = _waiting_ids(docker_client, lab_prefix)
    hub.spawn("mal")  # the hand-over runs in a container holding mal's package folder
    second = docker_client.containers.get(f"{lab_prefix}-mal")
    assert "warm pool is off" not in hub.log_text()
    assert second.id in waiting, "mal's own lab did not come from the pool"

    wait_full(docker_client, lab_prefix, 2)
    waiting = _waiting_ids(docker_client, lab_prefix)
    hub.spawn("ben")
    ben = docker_client.containers.get(f"{lab_prefix}-ben")
    assert ben.id in waiting, "the next user did not get a warm lab"
    assert "warm pool is off" not in hub.log_text()
    for user in ("mal", "ben"):
        hub.stop_server(user)


def test_pool_usernames_keep_their_labs_through_a_health_check(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    """Finding 5a: ``pool-x`` and ``pool-<12 hex>`` are usernames, their labs are not leftovers."""
    hub = pool_hub(hub_factory, lab_image, lab_root, lab_prefix, 2)
    users = ["pool-x", f"pool-{secrets.token_hex(6)}"]
    labs = {}
    for user in users:
        wait_full(docker_client, lab_prefix, 2)
        waiting = _waiting_ids(docker_client, lab_prefix)
        hub.spawn(user)
        labs[user] = docker_client.containers.get(f"{lab_prefix}-{user}")
        assert labs[user].id in waiting, f"{user}'s lab did not come from the pool"
    lab_ids = {lab.id for lab in labs.values()}

    def others(exclude: set[str]) -> list:
        return [c for c in ready_pool(docker_client, lab_prefix) if c.id not in exclude]

    waiting = wait_until(
        lambda: len(found := others(lab_ids)) >= 2 and found, 120, what="a full pool"
    )
    time.sleep(0.5)  # the hub reads a starting container's log every 0.25 s: now it is waiting
    # a waiting container dies; only the pool's health check (every 20 s) notices and replaces
    # it, and that same pass, before any refill, looks for pool containers it does not hold
    dead = waiting[0]
    dead.kill()
    wait_until(
        lambda: len(others(lab_ids | {dead.id})) >= 2,
        90,
        what="the health check to replace the dead waiting container",
    )
    for user, lab in labs.items():
        kept = docker_client.containers.list(filters={"id": lab.id})
        assert kept, f"{user}'s lab was removed as a pool leftover:\n{hub.log_tail()}"
        assert hub.server_model(user)["ready"]
    assert "left by a broken start" not in hub.log_text()
    for user in users:
        hub.stop_server(user)
