"""The warm pool seen from a test: a hub with a pool, its waiting containers, waiting for it to fill."""

from __future__ import annotations

import logging
import time

from labhub.lab import names
from labhub.pool import model as pool
from labhub.pool import warm_pool

from .hubconfig import lab_config
from .waiting import wait_until

#: A little more than the longest interval at which the hub reads a starting container's log.
HUB_POLL = 0.4


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
        if names.is_pool_container_name(prefix, c.name)
    ]


def ready_pool(client, prefix) -> list:
    """The waiting containers of ``prefix`` whose waiter says it is ready, as the engine shows them."""
    return [
        c
        for c in free_pool(client, prefix)
        if b"labhub-pool: ready" in c.logs(stdout=True, stderr=False)
    ]


def wait_full(client, prefix, size, wait=120.0) -> list:
    """Wait until the engine shows ``size`` ready waiting containers of ``prefix``; return them."""
    full = wait_until(
        lambda: (ready := ready_pool(client, prefix)) and len(ready) >= size and ready,
        wait,
        what=f"a full pool of {size} ({prefix})",
    )
    # the hub reads a starting container's log every 0.25 s at most: a login right after the
    # engine shows "ready" could find the container not yet waiting in the hub's own map
    time.sleep(HUB_POLL)
    return full


def pool_from_settings(settings, docker, *, size: int, pool_dir: str):
    """A WarmPool built from a LabSettings value with a stand-in engine call, for tests without a daemon."""
    template, targets, overrides = pool.pool_template(settings)
    return warm_pool.WarmPool(
        size=size,
        concurrency=1,
        prefix="labhub",
        pool_dir=pool_dir,
        template=template,
        overrides=overrides,
        slot_targets=targets,
        docker=docker,
        create_host_config=dict,
        log=logging.getLogger("test"),
    )
