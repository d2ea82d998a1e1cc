"""Both engines, one lab: LabDockerSpawner and LabSwarmSpawner held to the same semantics, image by image.

Each case starts a real hub on one engine (Docker, or a one-node swarm on loopback;
host networking on both) with one of three images built here: labhub's own, a
docker-stacks-like image (HOME owned by uid 1000, mode 0755) and a plain Python
image with no home at all. On every pair a user's file lands on the host as
2100:2100, HOME is the lab's to write, a few hostile names are served or refused
(never a 500), and a lab that exits at once gives the user the same sentence.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest
from jupyterhub.utils import url_escape_path

from labhub.spawner.lifecycle import early_exit_message

from ..conftest import lab_spawner_config
from ..hub.test_startup import BASE_ENV, LAB_AUTH, hub_refusal, refusal_sentence
from ..support.contents import get_file, put_file
from ..support.hub import SpawnFailed, UserRejected
from ..support.images import three_images
from ..support.labs import lab_container, lab_exec
from ..support.names import HOSTILE_USERNAMES

pytestmark = [pytest.mark.docker, pytest.mark.swarm]

ENGINES = ("docker", "swarm")
IMAGES = ("labhub", "docker-stacks-like", "plain-python")
SPAWNER = {"docker": "LabDockerSpawner", "swarm": "LabSwarmSpawner"}

#: Hostile names each case tries, one of each kind that broke something once: a path
#: trick, a blank inside, a name no Swarm service may carry, a long one.
HOSTILE_SAMPLE = ("../../etc", "a b", "\U0001f600", "x" * 150)
assert all(name in HOSTILE_USERNAMES for name in HOSTILE_SAMPLE)


@pytest.fixture(scope="module")
def images(lab_image) -> dict[str, str]:
    return three_images(lab_image)


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    if request.param == "swarm":
        request.getfixturevalue("swarm")  # a one-node swarm for this module, left at its end
    return request.param


def engine_config(engine: str, image: str, lab_root: Path, prefix: str, extra: str = "") -> str:
    """The same lab settings for either spawner (host networking, this test's prefix)."""
    # lab_root is the storage every node mounts; on Swarm the folder task makes the rest
    lab_root.mkdir(exist_ok=True)
    return lab_spawner_config(image, lab_root, prefix, extra).replace(
        "LabDockerSpawner", SPAWNER[engine]
    )


def lab_objects(docker_client, prefix: str, engine: str) -> list[str]:
    """This test's lab services (Swarm) or containers (Docker) still there.

    On Swarm the hub removes the service; the engine then retires its task's container
    in its own time, and the lab_prefix fixture removes what is left.
    """
    if engine == "swarm":
        return [s.name for s in docker_client.services.list() if s.name.startswith(prefix)]
    found = docker_client.api.containers(all=True, filters={"name": prefix})
    return [c["Names"][0] for c in found]


@pytest.mark.parametrize("kind", IMAGES)
def test_same_lab_on_both_engines(
    engine, kind, images, hub_factory, lab_root, lab_prefix, docker_client
):
    hub = hub_factory(engine_config(engine, images[kind], lab_root, lab_prefix))
    # two hostile names per image, so each engine meets every name of the sample
    first = 2 * IMAGES.index(kind) % len(HOSTILE_SAMPLE)
    hostile = HOSTILE_SAMPLE[first : first + 2]
    # alice and the hostile names start at once: each is served as its own lab or
    # refused in one sentence, never a 500
    t0 = time.monotonic()
    outcome: dict[str, str] = {}
    started = []
    for raw in ("alice", *hostile):
        try:
            name = hub.create_user(raw)
        except UserRejected:
            outcome[raw] = "refused by the hub"
            continue
        r = hub.api("POST", f"/users/{url_escape_path(name)}/server")
        assert r.status_code < 500, (raw, r.status_code, r.text[:300])
        if r.status_code in (201, 202):
            started.append((raw, name))
        else:
            outcome[raw] = f"refused ({r.status_code})"
    for raw, name in started:
        try:
            hub.wait_ready(name, wait=120)
        except SpawnFailed:
            failed = hub.progress_events(name)[-1]
            assert failed.get("failed") and "Traceback" not in failed["message"], failed
            outcome[raw] = "refused: " + failed["message"][:60]
            continue
        r = hub.user_request(name, "GET", "/api/contents/work")
        assert r.status_code == 200, (raw, r.status_code)
        outcome[raw] = "served"
    ready_s = time.monotonic() - t0
    assert outcome["alice"] == "served", outcome

    put_file(hub, "alice", "work/mine.txt", f"{engine} {kind}")
    put_file(hub, "alice", "shared/team.txt", f"{engine} {kind}")
    # HOME is the lab's: the server's root folder, where a user keeps dotfiles
    put_file(hub, "alice", "in-home.txt", "HOME is writable")
    code, owner = lab_exec(
        lab_container(docker_client, lab_prefix, "alice"), ["stat", "-c", "%u:%g", "/home/jovyan"]
    )
    assert (code, owner.strip()) == (0, "2100:2100"), (engine, kind, owner)
    for path in (
        lab_root / "personal_notebooks" / "alice" / "mine.txt",
        lab_root / "shared_notebooks" / "team.txt",
    ):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (2100, 2100), (engine, kind, path)

    for _raw, name in started:
        hub.api("DELETE", f"/users/{url_escape_path(name)}/server")
    for _raw, name in started:
        hub.stop_server(name)
    assert lab_objects(docker_client, lab_prefix, engine) == []
    served = sum(v == "served" for v in outcome.values())
    print(f"\n{engine}/{kind}: {len(started)} labs ready in {ready_s:.2f} s; {served} served")


def test_a_lab_that_exits_at_once_says_the_same_on_both_engines(
    engine, lab_image, hub_factory, lab_root, lab_prefix, docker_client
):
    spawner = SPAWNER[engine]
    extra = f'c.{spawner}.cmd = ["sh", "-c", "echo early-exit-marker; exit 3"]\n'
    hub = hub_factory(engine_config(engine, lab_image, lab_root, lab_prefix, extra))
    with pytest.raises(SpawnFailed):
        hub.spawn("erin", wait=60)
    failed = hub.progress_events("erin")[-1]
    # the user reads the same sentence whichever engine ran the lab
    assert failed.get("failed") and failed["message"].endswith(
        early_exit_message(3, False, "early-exit-marker")
    ), failed
    assert "early-exit-marker" in hub.log_text()  # the admin finds the lab's last output
    assert lab_objects(docker_client, lab_prefix, engine) == []


EXAMPLE = Path(__file__).parents[2] / "example_config" / "swarm" / "jupyterhub_config.py"


def test_configure_swarm_as_in_the_example_starts_a_lab(
    swarm, lab_image, hub_factory, lab_root, lab_prefix, docker_client, tmp_path
):
    """example_config/swarm as written, with image, paths, placement and addresses made local.

    Its configure(spawner="swarm") names no network: the labs get the host network,
    LabSwarmSpawner's own default (configure() used to put them on labhub-labs, a
    local bridge no Swarm service can join).
    """
    lab_root.mkdir()
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "readme.txt").write_text("team data")
    volume = f"{lab_prefix}-datasets"
    local = f"""
    # --- made local for the test: the image, the paths, the placement, the addresses ---
    c.LabSwarmSpawner.prefix = {lab_prefix!r}
    c.LabSwarmSpawner.image = {lab_image!r}
    c.LabSwarmSpawner.lab_root = {str(lab_root)!r}
    c.LabSwarmSpawner.placement_constraints = ["node.role == manager"]
    c.LabSwarmSpawner.host_network_ip = "127.0.0.1"
    c.JupyterHub.hub_ip = c.JupyterHub.hub_connect_ip = "127.0.0.1"
    c.LabSwarmSpawner.lab_read_only_volumes = {{{volume!r}: "/home/jovyan/datasets"}}
    c.LabSwarmSpawner.volume_driver_options = {{
        {volume!r}: {{"type": "none", "o": "bind", "device": {str(datasets)!r}}}
    }}
    """
    config = EXAMPLE.read_text() + textwrap.dedent(local)
    env = {
        "LABHUB_DATA_DIR": str(tmp_path / "data"),
        "LABHUB_AUTH_MODE": "dummy",
        "LABHUB_DUMMY_PASSWORD": "lab-dev-password",
        "LABHUB_IDLE_TIMEOUT": "0",
    }
    hub = hub_factory(config, env=env)
    hub.spawn("alice")
    [service] = [s for s in docker_client.services.list() if s.name.startswith(lab_prefix)]
    spec = service.attrs["Spec"]["TaskTemplate"]
    [network] = spec["Networks"]
    assert docker_client.networks.get(network["Target"]).name == "host"
    assert spec["Resources"]["Limits"]["MemoryBytes"] == 8 * 1024**3  # the example's own
    assert spec["ContainerSpec"]["User"] == "2100:2100"
    put_file(hub, "alice", "work/example.txt", "from the example")
    st = (lab_root / "personal_notebooks" / "alice" / "example.txt").stat()
    assert (st.st_uid, st.st_gid) == (2100, 2100)
    r = get_file(hub, "alice", "datasets/readme.txt")
    assert r.status_code == 200 and r.json()["content"] == "team data"
    hub.stop_server("alice")
    assert lab_objects(docker_client, lab_prefix, "swarm") == []
    assert os.listdir(datasets) == ["readme.txt"]  # read-only: the lab added nothing


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        ("warm_pool_size", "c.LabSwarmSpawner.warm_pool_size = 2"),
        ("extra_host_config", 'c.LabSwarmSpawner.extra_host_config = {"shm_size": "1G"}'),
    ],
)
def test_a_docker_only_setting_on_swarm_stops_the_hub_in_one_sentence(tmp_path, setting, line):
    """Refused where the admin reads it, at hub start; no engine is needed to say so."""
    config = (
        lab_spawner_config("lab:1", tmp_path / "lab", "labcfg", line + "\n").replace(
            "LabDockerSpawner", "LabSwarmSpawner"
        )
        + LAB_AUTH
    )
    code, log = hub_refusal(tmp_path, "lab:1", config, BASE_ENV)
    assert code != 0 and "Traceback" not in log
    sentence = refusal_sentence(log)
    assert sentence.startswith(f"labhub: LabSwarmSpawner: {setting} cannot be honoured by "), (
        sentence
    )
    assert "LabSwarmSpawner (Swarm services)" in sentence and sentence.count(". ") == 0
