"""labhub.hub.identity: two hubs on one engine, both on default names, never touch each other's objects.

The cancer-research lab in the source documents runs a new version beside the old
one on the production server. Each hub's labs, pool containers and helpers carry
that hub's identity (from its own cookie secret), so neither hub's pool health
check removes the other's waiting containers, and one username on both hubs gets
two labs, each serving its own hub's files.
"""

from __future__ import annotations

import contextlib
import subprocess
import time

import docker
import pytest

from labhub.lab.names import hub_identity, hub_prefix
from labhub.pool import mounts as pool_mounts

from ..support.contents import put_file, read_file
from ..support.hubconfig import lab_config
from ..support.pools import free_pool
from ..support.waiting import wait_until

pytestmark = pytest.mark.reliability


def prefix_of(hub) -> str:
    """The default prefix of ``hub``: labhub plus the identity of its cookie secret."""
    secret = bytes.fromhex((hub.workdir / "cookie_secret").read_text().strip())
    return hub_prefix(hub_identity(secret))


@pytest.fixture
def default_named(docker_client, tmp_path):
    """Prefixes whose containers are removed at the end of the test, with the pools' mounts."""
    prefixes: list[str] = []
    yield prefixes
    for point in sorted(pool_mounts.mounts_under(str(tmp_path)), reverse=True):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    for prefix in prefixes:
        for container in docker_client.api.containers(all=True, filters={"name": prefix}):
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.api.remove_container(container["Id"], force=True, v=True)


def test_two_hubs_on_default_names_keep_their_pools_and_their_users_apart(
    hub_factory, lab_image, tmp_path, docker_client, default_named
):
    roots = {side: tmp_path / f"lab-{side}" for side in "ab"}
    hubs = {
        side: hub_factory(
            lab_config(lab_image, roots[side], None, auth="lab", pool=2), name=f"hub-{side}"
        )
        for side in "ab"
    }
    prefixes = {side: prefix_of(hub) for side, hub in hubs.items()}
    default_named.extend(prefixes.values())
    assert prefixes["a"] != prefixes["b"]
    assert all(p.startswith("labhub-") for p in prefixes.values())

    def pools():
        return {side: {c.id for c in free_pool(docker_client, p)} for side, p in prefixes.items()}

    wait_until(lambda: all(len(ids) == 2 for ids in pools().values()), 120, what="both pools full")
    before = pools()
    # past a health check of each pool: neither removes the other's waiting containers
    time.sleep(25)
    assert pools() == before

    for side, hub in hubs.items():
        hub.spawn("ann")
        put_file(hub, "ann", "work/whose.txt", f"hub {side}")
    for side, hub in hubs.items():
        assert read_file(hub, "ann", "work/whose.txt") == f"hub {side}"
        assert (roots[side] / "personal_notebooks" / "ann" / "whose.txt").read_text() == (
            f"hub {side}"
        )
    names = {side: {c.name for c in docker_client.containers.list()} for side in prefixes}
    labs = {side: f"{p}-ann" for side, p in prefixes.items()}
    assert labs["a"] in names["a"] and labs["b"] in names["b"]
    for hub in hubs.values():
        hub.stop_server("ann")
