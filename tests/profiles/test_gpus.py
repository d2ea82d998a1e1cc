"""GPUs: pure allocation and requests, the exact request the engine stores, and a real hub's pool.

This machine has no GPU and no NVIDIA runtime. What is shown here: the pool
(exclusive ids, released on stop, on death and kept across a hub restart) through
a real hub with a configured device list, using ``gpu_request = "environment"`` so
the labs can run; the exact ``DeviceRequests`` the engine stores for a lab's
container (the engine then refuses to start it); and that a GPU profile on an
engine without the NVIDIA runtime fails with one sentence and leaves nothing.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time

import pytest
from docker.errors import APIError
from docker.types import HostConfig

from labhub.lab.build import build_lab
from labhub.lab.model import Lab, container_spec, service_spec
from labhub.lab.settings import LabSettings
from labhub.profiles import gpus
from labhub.profiles.rules import Profile

from ..conftest import lab_spawner_config
from ..support.hub import SpawnFailed

#: What the engine stores for a lab holding GPU 1 (read back by docker inspect below).
ENGINE_DEVICE_REQUESTS = [
    {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["1"], "Capabilities": [["gpu"]], "Options": {}}
]


def gpu_lab(**fields) -> Lab:
    base = dict(
        name="labhub-alice",
        image="img",
        command=["jupyterhub-singleuser"],
        environment={},
        user="2100:2100",
        workdir="/home/jovyan",
        mounts=[],
        labels={},
        network="host",
        port=8888,
    )
    return Lab(**{**base, **fields})


# --- pure --------------------------------------------------------------------------


def test_pool_gives_distinct_ids_and_takes_them_back():
    pool = gpus.GpuPool(["0", "1", "2"])
    assert pool.allocate("a", 2) == ("0", "1")
    assert pool.allocate("b", 1) == ("2",)
    with pytest.raises(gpus.NoFreeGpu) as err:
        pool.allocate("c", 1)
    assert str(err.value).startswith(
        "Your lab needs 1 GPU and the host has 0 free (of 3); nothing was started"
    )
    assert pool.release("a") == ("0", "1")
    assert pool.allocate("c", 2) == ("0", "1")
    assert pool.allocate("c", 1) == ("0",)  # a restart of the same lab gives back first
    assert pool.free() == ["1"]


def test_restore_keeps_only_ids_that_are_free_and_configured():
    pool = gpus.GpuPool(["0", "1"])
    assert pool.restore("a", ["1", "7"]) == ("1",)
    assert pool.restore("b", ["1"]) == ()  # already a's
    assert pool.free() == ["0"]


def test_shared_labs_never_see_a_device_held_alone():
    pool = gpus.GpuPool(["0", "1", "2"])
    assert pool.allocate("a", 1) == ("0",)
    # a shared lab sees what nobody holds alone, never a's device
    assert pool.share("s") == ("1", "2")
    assert pool.share("t") == ("1", "2")  # shared labs share with each other
    # and while they run, nobody takes those alone
    with pytest.raises(gpus.NoFreeGpu) as err:
        pool.allocate("b", 1)
    assert "0 free (of 3, 2 in use by shared labs)" in str(err.value)
    pool.release("s")
    pool.release("t")
    assert pool.allocate("b", 2) == ("1", "2")
    with pytest.raises(gpus.NoFreeGpu) as err:
        pool.share("u")  # every device held alone: a shared lab gets none, it is refused
    assert str(err.value).startswith("Your lab shares the GPUs no other lab holds alone")


def test_restore_keeps_shared_and_alone_apart():
    pool = gpus.GpuPool(["0", "1"])
    assert pool.restore("s", ["1"], shared=True) == ("1",)
    assert pool.restore("a", ["1"]) == ()  # a shared lab sees it: nobody holds it alone
    assert pool.restore("a", ["0"]) == ("0",)
    assert pool.restore("t", ["0", "1"], shared=True) == ("1",)  # a holds 0 alone
    assert pool.release("s") == ("1",) and pool.release("t") == ("1",)
    assert pool.free() == ["1"]


# --- the environment and device requests the engine receives -------------------------

SETTINGS = LabSettings(lab_root="/srv/lab", image="lab:1", network_name="labhub-labs")
ONE_GPU = Profile(slug="gpu", display_name="GPU", gpus=1)
SHARED = Profile(slug="all", display_name="All", gpus="shared")
CPU = Profile(slug="cpu", display_name="CPU")


def engine_request(lab: Lab) -> tuple[str | None, list]:
    """NVIDIA_VISIBLE_DEVICES and the DeviceRequests of the container the engine gets."""
    spec = container_spec(lab)
    host = HostConfig(version="1.41", **spec["host_config"])
    return spec["environment"].get("NVIDIA_VISIBLE_DEVICES"), host.get("DeviceRequests", [])


@pytest.mark.security
def test_a_lab_without_gpus_gets_void():
    # a CUDA image says NVIDIA_VISIBLE_DEVICES=all: where nvidia is the default runtime,
    # a lab that sets nothing sees every GPU of the host
    for profile in (None, CPU):
        lab = build_lab(SETTINGS, "ann", command=["x"], profile=profile)
        assert engine_request(lab) == ("void", [])
        by_env = dataclasses.replace(SETTINGS, gpu_request="environment")
        assert engine_request(build_lab(by_env, "ann", command=["x"], profile=profile)) == (
            "void",
            [],
        )
    # an admin's environment does not undo it
    admin = dataclasses.replace(SETTINGS, environment={"NVIDIA_VISIBLE_DEVICES": "all"})
    assert engine_request(build_lab(admin, "ann", command=["x"]))[0] == "void"
    # Swarm: a lab reserving no GPU sees none; one reserving some reads Swarm's ids
    swarm = build_lab(SETTINGS, "ann", command=["x"], profile=CPU, hub_assigns_gpus=False)
    assert service_spec(swarm)["task_template"]["ContainerSpec"]["Env"] == [
        f"{k}={v}" for k, v in swarm.environment.items()
    ]
    assert swarm.environment["NVIDIA_VISIBLE_DEVICES"] == "void"
    reserving = build_lab(SETTINGS, "ann", command=["x"], profile=ONE_GPU, hub_assigns_gpus=False)
    assert "NVIDIA_VISIBLE_DEVICES" not in reserving.environment and reserving.gpu_count == 1


@pytest.mark.security
def test_a_gpu_lab_sees_exactly_its_ids():
    lab = build_lab(SETTINGS, "ann", command=["x"], profile=ONE_GPU, gpu_ids=("1",))
    assert engine_request(lab) == ("1", ENGINE_DEVICE_REQUESTS)
    by_env = dataclasses.replace(SETTINGS, gpu_request="environment")
    assert engine_request(
        build_lab(by_env, "ann", command=["x"], profile=ONE_GPU, gpu_ids=("1",))
    ) == ("1", [])


@pytest.mark.security
def test_a_shared_lab_gets_only_what_nobody_holds_alone(tmp_path):
    """Through the spawner's own steps: an exclusive lab holds GPU 0, a shared lab sees only 1."""
    from labhub.spawner.docker import LabDockerSpawner

    def spawner(name: str) -> LabDockerSpawner:
        s = LabDockerSpawner(gpu_devices=[f"{tmp_path}-0", f"{tmp_path}-1"])
        s.user = type("U", (), {"name": name, "groups": [], "admin": False})()
        return s

    alone, shared, late = spawner("ann"), spawner("ben"), spawner("cy")
    assert alone.hold_gpus(ONE_GPU) == (f"{tmp_path}-0",)
    shared._lab_profile = SHARED
    assert shared.hold_gpus(SHARED) == (f"{tmp_path}-1",)
    assert shared.lab_gpu_ids() == (f"{tmp_path}-1",)
    lab = build_lab(SETTINGS, "ben", command=["x"], profile=SHARED, gpu_ids=shared.lab_gpu_ids())
    visible, requests = engine_request(lab)
    assert visible == f"{tmp_path}-1" and requests[0]["DeviceIDs"] == [f"{tmp_path}-1"]
    with pytest.raises(Exception) as refused:
        late.hold_gpus(ONE_GPU)  # the shared lab's device is not taken alone while it runs
    assert getattr(refused.value, "status_code", None) == 409
    shared.object_id = "c0ffee"  # a running lab: its state says what it shares
    state = shared.get_state()
    assert state["gpu_ids"] == [f"{tmp_path}-1"] and state["gpu_shared"] is True
    shared.release_gpus()
    assert late.hold_gpus(ONE_GPU) == (f"{tmp_path}-1",)


def test_swarm_refuses_shared_profiles():
    from labhub.profiles.rules import ProfileError
    from labhub.spawner.swarm import LabSwarmSpawner

    spawner = LabSwarmSpawner(profile_list=[{"display_name": "All", "gpus": "shared"}])
    with pytest.raises(ProfileError) as err:
        spawner.check_lab_config()
    assert 'has gpus: "shared", which LabSwarmSpawner cannot keep away' in str(err.value)


def test_docker_translation_asks_for_exact_ids():
    host = container_spec(gpu_lab(gpu_ids=("1",)))["host_config"]
    assert host["device_requests"] == [
        {"driver": "nvidia", "device_ids": ["1"], "capabilities": [["gpu"]]}
    ]
    assert HostConfig(version="1.41", **host)["DeviceRequests"] == ENGINE_DEVICE_REQUESTS
    assert "device_requests" not in container_spec(gpu_lab())["host_config"]


def test_swarm_translation_reserves_generic_resources():
    resources = service_spec(gpu_lab(gpu_count=2))["task_template"]["Resources"]
    assert resources["Reservations"]["GenericResources"] == [
        {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}}
    ]
    assert "Reservations" not in service_spec(gpu_lab())["task_template"].get("Resources", {})


def test_discovery_reads_nvidia_smi_and_is_empty_without_it():
    def fake_run(cmd, **kwargs):
        assert cmd[0] == "nvidia-smi" and kwargs["timeout"]
        return subprocess.CompletedProcess(cmd, 0, "0\n1\n", "")

    assert gpus.discover_devices(fake_run, lambda name: "/usr/bin/nvidia-smi") == ["0", "1"]
    assert gpus.discover_devices(fake_run, lambda name: None) == []


# --- the real engine ---------------------------------------------------------------


@pytest.mark.docker
def test_engine_stores_the_exact_device_request_and_refuses_it_here(
    docker_client, lab_image, lab_prefix
):
    spec = container_spec(gpu_lab(name=f"{lab_prefix}-gpu", image=lab_image, gpu_ids=("1",)))
    spec["host_config"] = docker_client.api.create_host_config(**spec["host_config"])
    created = docker_client.api.create_container(**spec)
    try:
        stored = docker_client.api.inspect_container(created["Id"])["HostConfig"]["DeviceRequests"]
        print(f"\nDeviceRequests stored by the engine: {stored}")
        assert stored == ENGINE_DEVICE_REQUESTS
        with pytest.raises(APIError) as err:
            docker_client.api.start(created["Id"])
        print(f"engine at start: {err.value.explanation}")
        assert gpus.runtime_missing_message(str(err.value.explanation))
    finally:
        docker_client.api.remove_container(created["Id"], force=True)


# --- through a real hub --------------------------------------------------------------

GPU_PROFILES = """
c.JupyterHub.cleanup_servers = False
c.Spawner.poll_interval = 2
c.LabDockerSpawner.gpu_devices = ["0"]
c.LabDockerSpawner.profile_list = [
    {"display_name": "CPU", "slug": "cpu", "default": True},
    {"display_name": "One GPU", "slug": "gpu", "gpus": 1},
]
"""


def lab_env(docker_client, name: str) -> list[str]:
    (container,) = docker_client.containers.list(filters={"name": name})
    return container.attrs["Config"]["Env"]


@pytest.mark.docker
@pytest.mark.reliability
@pytest.mark.slow
def test_one_gpu_two_labs_across_a_hub_restart(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    config = lab_spawner_config(
        lab_image,
        lab_root,
        lab_prefix,
        GPU_PROFILES + 'c.LabDockerSpawner.gpu_request = "environment"',
    )
    hub = hub_factory(config)
    hub.spawn("ann", {"profile": "gpu"})
    assert "NVIDIA_VISIBLE_DEVICES=0" in lab_env(docker_client, f"{lab_prefix}-ann")

    with pytest.raises(SpawnFailed) as refused:
        hub.spawn("ben", {"profile": "gpu"})
    print(f"\nsecond GPU lab: {refused.value.status} {refused.value.text}")
    assert refused.value.status == 409
    assert "Your lab needs 1 GPU and the host has 0 free (of 1)" in refused.value.text
    assert not docker_client.containers.list(all=True, filters={"name": f"{lab_prefix}-ben"})
    hub.spawn("ben", {"profile": "cpu"})  # a profile without GPUs still starts
    hub.stop_server("ben")

    # a restarted hub knows ann still holds GPU 0 (from her server's state)
    hub.stop()
    t0 = time.monotonic()
    hub.start()
    print(f"hub restarted in {time.monotonic() - t0:.1f} s")
    assert hub.server_model("ann")["ready"]
    with pytest.raises(SpawnFailed) as still:
        hub.spawn("ben", {"profile": "gpu"})
    assert still.value.status == 409

    # ann stops: ben gets the GPU
    hub.stop_server("ann")
    hub.spawn("ben", {"profile": "gpu"})
    assert "NVIDIA_VISIBLE_DEVICES=0" in lab_env(docker_client, f"{lab_prefix}-ben")

    # ben's lab dies outside the hub: the hub's poll gives the GPU back, ann gets it
    docker_client.containers.get(f"{lab_prefix}-ben").kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            hub.spawn("ann", {"profile": "gpu"})
            break
        except SpawnFailed as err:
            assert err.status in (400, 409), err  # 400: ben's server not yet seen as stopped
            time.sleep(1)
    else:
        pytest.fail("the dead lab's GPU never came back")
    assert f"Lab {lab_prefix}-ann holds GPUs 0" in hub.log_text()


@pytest.mark.docker
@pytest.mark.security
def test_gpu_environment_through_a_hub(hub_factory, lab_image, lab_root, lab_prefix, docker_client):
    """The containers a real hub creates: void without GPUs, a shared lab never sees a held one."""
    config = GPU_PROFILES.replace('["0"]', '["0", "1"]') + (
        'c.LabDockerSpawner.profile_list.append({"display_name": "Shared", "slug": "shared", '
        '"gpus": "shared"})\nc.LabDockerSpawner.gpu_request = "environment"'
    )
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, config))
    hub.spawn("ann", {"profile": "cpu"})
    env = lab_env(docker_client, f"{lab_prefix}-ann")
    print(f"\nGPU-less lab: {[v for v in env if v.startswith('NVIDIA')]}")
    assert "NVIDIA_VISIBLE_DEVICES=void" in env
    hub.spawn("ben", {"profile": "gpu"})
    assert "NVIDIA_VISIBLE_DEVICES=0" in lab_env(docker_client, f"{lab_prefix}-ben")
    hub.spawn("cy", {"profile": "shared"})
    assert "NVIDIA_VISIBLE_DEVICES=1" in lab_env(docker_client, f"{lab_prefix}-cy")
    with pytest.raises(SpawnFailed) as refused:
        hub.spawn("dee", {"profile": "gpu"})  # GPU 1 is seen by the shared lab
    print(f"exclusive while shared runs: {refused.value.status} {refused.value.text}")
    assert refused.value.status == 409 and "1 in use by shared labs" in refused.value.text


@pytest.mark.docker
@pytest.mark.reliability
def test_gpu_lab_without_nvidia_runtime_fails_in_one_sentence(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, GPU_PROFILES))
    for _attempt in range(2):  # the second attempt proves the GPU was given back
        with pytest.raises(SpawnFailed) as failed:
            hub.spawn("ann", {"profile": "gpu"})
        message = failed.value.text
        print(f"\n{failed.value.status}: {message}")
        assert "no NVIDIA runtime" in message and "nothing was started" in message
        assert "Traceback" not in message
        assert not docker_client.containers.list(all=True, filters={"name": lab_prefix})
    assert hub.log_text().count("gave back GPUs 0") >= 2


@pytest.mark.docker
@pytest.mark.swarm
def test_swarm_stores_the_generic_resource_reservation(swarm, docker_client, lab_image, lab_prefix):
    spec = service_spec(gpu_lab(name=f"{lab_prefix}-gpu", image=lab_image, gpu_count=1))
    service = docker_client.api.create_service(**spec)
    try:
        stored = docker_client.api.inspect_service(service["ID"])["Spec"]["TaskTemplate"]
        print(f"\nSwarm stores: {stored['Resources']}")
        assert stored["Resources"]["Reservations"]["GenericResources"] == [
            {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}
        ]
    finally:
        docker_client.api.remove_service(service["ID"])
