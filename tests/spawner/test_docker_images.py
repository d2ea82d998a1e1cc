"""LabDockerSpawner with images a team brings: any image with jupyterhub-singleuser, on defaults.

Three images, all built here with no registry: labhub's own, a docker-stacks-like
image (HOME owned by uid 1000, mode 0755, USER 1000) and a plain Python image with
no home at all. Each serves a lab whose files land ``2100:2100`` on the host. A
lab that stops while starting leaves its last output in the hub log, secrets hidden.
"""

from __future__ import annotations

import time

import pytest

from ..conftest import lab_spawner_config
from ..support.contents import put_file
from ..support.hub import SpawnFailed
from ..support.images import three_images

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def team_images(lab_image) -> dict[str, str]:
    return three_images(lab_image)


@pytest.mark.parametrize("kind", ["labhub", "docker-stacks-like", "plain-python"])
def test_any_image_with_singleuser_serves_a_lab_on_defaults(
    team_images, kind, hub_factory, lab_root, lab_prefix
):
    hub = hub_factory(lab_spawner_config(team_images[kind], lab_root, lab_prefix))
    t0 = time.monotonic()
    hub.spawn("alice")
    print(f"\n{kind}: spawn {time.monotonic() - t0:.2f} s")
    put_file(hub, "alice", "work/mine.txt", kind)
    put_file(hub, "alice", "shared/team.txt", kind)
    # HOME is writable: the server keeps its runtime files there, a user's config too
    r = hub.user_request("alice", "GET", "/api/contents/?content=1")
    assert r.status_code == 200, r.text
    for path in (
        lab_root / "personal_notebooks" / "alice" / "mine.txt",
        lab_root / "shared_notebooks" / "team.txt",
    ):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (2100, 2100), path
    hub.stop_server("alice")


def test_a_lab_that_exits_at_start_leaves_its_output_in_the_hub_log(
    lab_image, hub_factory, lab_root, lab_prefix, docker_client
):
    extra = """
c.LabDockerSpawner.cmd = ["sh", "-c", "echo crash-marker-line; echo token=$JUPYTERHUB_API_TOKEN; exit 3"]
"""
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))
    with pytest.raises(SpawnFailed) as failed:
        hub.spawn("erin", wait=60)
    log = hub.log_text()
    assert "crash-marker-line" in log
    assert "exit code 3" in log
    assert "token=[secret]" in log  # the lab's API token never reaches the log
    assert "exited with code 3" in failed.value.text or "exited with code 3" in log
    assert docker_client.containers.list(all=True, filters={"name": lab_prefix}) == []


def test_an_image_without_singleuser_is_one_sentence(
    lab_image, hub_factory, lab_root, lab_prefix, docker_client
):
    extra = 'c.LabDockerSpawner.cmd = ["jupyterhub-singleuser-missing"]\n'
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))
    with pytest.raises(SpawnFailed):
        hub.spawn("fred", wait=60)
    r = hub.api("GET", "/users/fred")
    assert r.status_code == 200 and not r.json()["servers"]
    assert "cannot run the Jupyter single-user server" in hub.log_text()
    assert docker_client.containers.list(all=True, filters={"name": lab_prefix}) == []
