"""The warm pool seen from a test: a hub with a pool, its waiting containers, waiting for it to fill."""

from __future__ import annotations

import time

from labhub.pool import model as pool

from .hubconfig import lab_config


def pool_hub(hub_factory, lab_image, lab_root, prefix, size, extra=""):
    """A hub on host networking whose LabDockerSpawner keeps ``size`` containers waiting.

    labhub's authenticator starts the pool with the hub, before the first login.
    """
    return hub_factory(lab_config(lab_image, lab_root, prefix, auth="lab", pool=size, extra=extra))


def free_pool(docker_client, prefix) -> list:
    """The running pool containers of ``prefix`` that nobody has taken."""
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
