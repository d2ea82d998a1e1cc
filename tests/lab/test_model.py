"""labhub.lab.model: one lab description, translated to a Docker container and a Swarm service, without a daemon."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from labhub import LabDockerSpawner, LabSwarmSpawner
from labhub.lab import engine_limits
from labhub.lab.model import (
    LABEL_LAB,
    Lab,
    LabSpecError,
    Overrides,
    container_spec,
    service_spec,
    swarm_tmpfs_mounts,
)
from labhub.lab.mounts import LABEL_MANAGED, LABEL_USER
from labhub.lab.names import is_valid_object_name

from ..support.names import HOSTILE_USERNAMES

MOUNTS = [{"Type": "bind", "Source": "/p/a", "Target": "/home/jovyan/work", "ReadOnly": False}]
LAB = Lab(
    name="labhub-alice",
    image="lab:1",
    command=["jupyterhub-singleuser"],
    environment={"A": "1"},
    user="2100:2100",
    workdir="/home/jovyan",
    mounts=MOUNTS,
    labels={LABEL_LAB: "true"},
    network="host",
    port=40000,
)
#: Overrides that would widen a lab into the host, each engine's own kind.
HOSTILE = Overrides(
    create_kwargs={"user": "0", "host_config": {"privileged": True}},
    host_config={"privileged": True, "cap_add": ["SYS_ADMIN", "NET_BIND_SERVICE"]},
)
HOSTILE_SERVICE = Overrides(
    container_spec={"user": "root", "cap_add": ["SYS_ADMIN", "NET_BIND_SERVICE"]},
)


def service_dict(lab: Lab, overrides: Overrides | None = None) -> dict:
    spec = service_spec(lab, overrides)
    return {"task": dict(spec["task_template"]), "endpoint": dict(spec["endpoint_spec"]), **spec}


# --- the two translations of one lab ---------------------------------------------------


def test_both_engines_get_the_same_image_command_identity_mounts_and_labels():
    container = container_spec(LAB)
    task = service_dict(LAB)["task"]
    cs = task["ContainerSpec"]
    assert (container["image"], cs["Image"]) == ("lab:1", "lab:1")
    assert container["command"] == cs["Args"] == ["jupyterhub-singleuser"]
    assert container["user"] == cs["User"] == "2100:2100"
    assert container["working_dir"] == cs["Dir"] == "/home/jovyan"
    assert container["host_config"]["mounts"] == cs["Mounts"] == MOUNTS
    assert container["labels"] == cs["Labels"] == {LABEL_LAB: "true"}
    assert container["environment"] == {"A": "1"} and cs["Env"] == ["A=1"]


def test_host_network_publishes_nothing_bridge_publishes_on_host_ip():
    assert "port_bindings" not in container_spec(LAB)["host_config"]
    assert "ports" not in container_spec(LAB)
    assert service_dict(LAB)["endpoint"] == {}
    bridge = dataclasses.replace(LAB, network="", publish_port=True, host_ip="127.0.0.1")
    assert container_spec(bridge)["host_config"]["port_bindings"] == {40000: ("127.0.0.1",)}
    assert container_spec(bridge)["host_config"]["network_mode"] == "bridge"
    assert service_dict(bridge)["endpoint"]["Ports"][0]["TargetPort"] == 40000


def test_limits_reach_both_engines():
    lab = dataclasses.replace(LAB, mem_limit=2 * 1024**3, cpu_limit=1.5, mem_guarantee=1024**3)
    hc = container_spec(lab)["host_config"]
    assert (hc["mem_limit"], hc["cpu_period"], hc["cpu_quota"]) == (2 * 1024**3, 100_000, 150_000)
    assert hc["mem_reservation"] == 1024**3
    res = service_dict(lab)["task"]["Resources"]
    assert res["Limits"] == {"MemoryBytes": 2 * 1024**3, "NanoCPUs": 1_500_000_000}
    assert res["Reservations"] == {"MemoryBytes": 1024**3}
    hc = container_spec(lab, Overrides(host_config={"cpu_period": 50_000}))["host_config"]
    assert hc["cpu_quota"] == 75_000


@pytest.mark.security
def test_overrides_cannot_unharden_either_engine():
    container = container_spec(LAB, HOSTILE)
    assert container["user"] == "2100:2100"
    assert container["host_config"]["privileged"] is False
    assert container["host_config"]["cap_add"] == ["NET_BIND_SERVICE"]
    assert "no-new-privileges:true" in container["host_config"]["security_opt"]
    cs = service_dict(LAB, HOSTILE_SERVICE)["task"]["ContainerSpec"]
    assert cs["User"] == "2100:2100"
    assert cs["CapabilityAdd"] == ["NET_BIND_SERVICE"]


def test_overrides_merge_at_depth_on_both_engines():
    container = container_spec(LAB, Overrides(create_kwargs={"labels": {"team": "x"}}))
    assert container["labels"] == {LABEL_LAB: "true", "team": "x"}
    spec = service_dict(LAB, Overrides(create_kwargs={"labels": {"team": "x"}}))
    assert spec["labels"] == {LABEL_LAB: "true", "team": "x"}


def test_placement_constraints_from_settings_and_overrides_are_both_kept():
    lab = dataclasses.replace(LAB, placement_constraints=["node.role == manager"])
    overrides = Overrides(
        placement_spec={"constraints": ["node.labels.gpu == true", "node.role == manager"]}
    )
    placement = service_dict(lab, overrides)["task"]["Placement"]
    assert placement["Constraints"] == ["node.role == manager", "node.labels.gpu == true"]


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        (Overrides(placement_spec={"constrains": ["x"]}), "extra_placement_spec"),
        (Overrides(container_spec={"privileged": True}), "extra_container_spec"),
        (Overrides(resources_spec={"gpus": 1}), "extra_resources_spec"),
        (Overrides(task_spec={"replicas": 2}), "extra_task_spec"),
        (Overrides(endpoint_spec={"port": 1}), "extra_endpoint_spec"),
        (Overrides(create_kwargs={"task_template": {}}), "extra_create_kwargs"),
    ],
)
def test_an_override_swarm_cannot_take_is_one_sentence(overrides, setting):
    with pytest.raises(LabSpecError, match=setting) as err:
        service_spec(LAB, overrides)
    assert "\n" not in str(err.value) and str(err.value).endswith(".")


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        (Overrides(host_config={"privilegd": True}), "extra_host_config"),
        (Overrides(create_kwargs={"cmd": ["x"]}), "extra_create_kwargs"),
    ],
)
def test_an_override_docker_cannot_take_is_one_sentence(overrides, setting):
    with pytest.raises(LabSpecError, match=setting) as err:
        container_spec(LAB, overrides)
    assert "\n" not in str(err.value)


def test_a_wrong_fixed_override_is_found_before_any_spawn():
    spawner = make_spawner(LabSwarmSpawner, "x", extra_placement_spec={"constrains": ["a"]})
    with pytest.raises(LabSpecError, match="did you mean constraints"):
        spawner.check_lab_config()
    make_spawner(LabDockerSpawner, "x", extra_host_config={"shm_size": "1G"}).check_lab_config()


def test_a_name_swarm_refuses_is_one_sentence():
    with pytest.raises(LabSpecError, match="name_template"):
        service_spec(dataclasses.replace(LAB, name="labhub-a.b"))


# --- the spawner classes gather a lab without a daemon ---------------------------------


def make_spawner(cls, username: str, **config):
    user = SimpleNamespace(name=username, url=f"/user/{username}/", id=1, settings={})
    spawner = cls(user=user, hub=Hub(), cmd=["jupyterhub-singleuser"], image="lab:1", **config)
    spawner.api_token = "t0ken"
    return spawner


@pytest.mark.parametrize("cls", [LabDockerSpawner, LabSwarmSpawner])
async def test_spawners_describe_the_same_lab(cls, tmp_path):
    spawner = make_spawner(cls, "alice", lab_root=str(tmp_path), network_name="host")
    lab = await spawner.describe_lab()
    assert lab.name == "labhub-alice"
    assert lab.user == "2100:2100"
    assert [m["Target"] for m in lab.mounts] == [
        "/home/jovyan/work",
        "/home/jovyan/shared",
        "/opt/labhub/packages",
    ]
    assert lab.mounts[0]["Source"] == str(tmp_path / "personal_notebooks" / "alice")
    assert lab.environment["JUPYTERHUB_USER"] == "alice"
    assert lab.uses_host_network and not lab.publish_port


async def test_swarm_spawner_keeps_extra_placement_constraints(tmp_path):
    spawner = make_spawner(
        LabSwarmSpawner,
        "alice",
        lab_root=str(tmp_path),
        placement_constraints=["node.role == manager"],
        extra_placement_spec={"constraints": ["node.labels.lab == true"]},
    )
    spec = service_spec(await spawner.describe_lab(), await spawner.lab_overrides())
    assert spec["task_template"]["Placement"]["Constraints"] == [
        "node.role == manager",
        "node.labels.lab == true",
    ]


@pytest.mark.security
@pytest.mark.parametrize("username", HOSTILE_USERNAMES)
def test_every_hostile_name_gives_a_valid_name_on_both_engines(username):
    for cls in (LabDockerSpawner, LabSwarmSpawner):
        name = make_spawner(cls, username).object_name
        assert is_valid_object_name(name), (username, name)


def test_named_servers_get_their_own_names():
    plain = make_spawner(LabDockerSpawner, "alice")
    named = make_spawner(
        LabDockerSpawner, "alice", orm_spawner=SimpleNamespace(name="gpu", server=None)
    )
    assert named.name == "gpu"
    assert named.object_name != plain.object_name
    assert is_valid_object_name(named.object_name)


# --- what one engine cannot honour is refused, never dropped ---------------------------

HOME_TMPFS = {"/home/jovyan": "uid=2100,gid=2100,mode=1777"}


def test_swarm_carries_the_throwaway_home_with_its_owner():
    """Swarm's own tmpfs takes no owner and loses its mode: a local tmpfs volume carries both."""
    lab = dataclasses.replace(LAB, tmpfs=HOME_TMPFS, labels={LABEL_LAB: "true", LABEL_USER: "al"})
    assert container_spec(lab)["host_config"]["tmpfs"] == HOME_TMPFS
    [home] = [m for m in service_dict(lab)["task"]["ContainerSpec"]["Mounts"] if m not in MOUNTS]
    assert home["Type"] == "volume" and home["Target"] == "/home/jovyan"
    assert home["Source"].startswith("labhub-alice-tmpfs-")
    options = home["VolumeOptions"]
    assert options["NoCopy"] is True  # the image's HOME, and its owner, are not copied in
    assert options["DriverConfig"] == {
        "Name": "local",
        "Options": {
            "type": "tmpfs",
            "device": "tmpfs",
            # Docker's own tmpfs flags, so both engines give the same HOME
            "o": "uid=2100,gid=2100,mode=1777,noexec,nosuid,nodev",
        },
    }
    assert options["Labels"] == {LABEL_MANAGED: "true", LABEL_USER: "al"}
    # another owner is another volume: a volume left by an earlier lab is never reused
    other = dataclasses.replace(lab, tmpfs={"/home/jovyan": "uid=3000,gid=3000,mode=1777"})
    assert swarm_tmpfs_mounts(other)[0]["Source"] != home["Source"]


@pytest.mark.parametrize("engine", [engine_limits.DOCKER, engine_limits.SWARM])
def test_tmpfs_options_no_engine_can_carry_are_one_sentence(engine):
    assert engine_limits.tmpfs_refusal(engine, "/h", "uid=1,gid=1,mode=1777,size=64m") is None
    message = engine_limits.tmpfs_refusal(engine, "/h", "uid=1,mpol=bind,huge")
    assert "mpol=bind, huge" in message and "/h" in message
    assert engine_limits.ENGINE_NAMES[engine] in message and "\n" not in message
    translate = container_spec if engine == engine_limits.DOCKER else service_spec
    with pytest.raises(LabSpecError, match="mpol"):
        translate(dataclasses.replace(LAB, tmpfs={"/h": "uid=1,mpol=bind"}))


@pytest.mark.parametrize(
    ("engine", "settings", "named"),
    [
        (engine_limits.SWARM, {"extra_host_config": {"shm_size": "1G"}}, "extra_host_config"),
        (engine_limits.SWARM, {"links": {"db": "db"}}, "links"),
        (engine_limits.SWARM, {"warm_pool_size": 3}, "warm_pool_size"),
        (engine_limits.DOCKER, {"cpu_guarantee": 0.5}, "cpu_guarantee"),
        (engine_limits.DOCKER, {"placement_constraints": ["a"]}, "placement_constraints"),
        (engine_limits.DOCKER, {"extra_task_spec": {"x": 1}}, "extra_task_spec"),
    ],
)
def test_a_setting_the_engine_cannot_honour_is_one_sentence(engine, settings, named):
    message = engine_limits.refusal(engine, settings)
    assert message.startswith(f"{named} cannot be honoured by {engine_limits.ENGINE_NAMES[engine]}")
    assert message.endswith(".") and ". " not in message and "\n" not in message
    # the same setting, empty or zero, asks for nothing
    assert engine_limits.refusal(engine, {named: type(settings[named])()}) is None
    other = engine_limits.SWARM if engine == engine_limits.DOCKER else engine_limits.DOCKER
    assert engine_limits.refusal(other, settings) is None  # the other engine honours it


def test_swarm_translation_refuses_what_a_service_has_no_place_for():
    with pytest.raises(LabSpecError, match="extra_host_config cannot be honoured by LabSwarm"):
        service_spec(LAB, Overrides(host_config={"shm_size": "1G"}))
    with pytest.raises(LabSpecError, match="links cannot be honoured by LabSwarm"):
        service_spec(dataclasses.replace(LAB, links={"db": "db"}))
    with pytest.raises(
        LabSpecError, match="extra_create_kwargs has keys Swarm does not take for a lab: user"
    ):
        service_spec(LAB, Overrides(create_kwargs={"user": "0"}))
    with pytest.raises(LabSpecError, match="cpu_guarantee cannot be honoured by LabDocker"):
        container_spec(dataclasses.replace(LAB, cpu_guarantee=1.0))
    spec = service_spec(LAB, Overrides(create_kwargs={"labels": {"team": "x"}, "mode": None}))
    assert spec["labels"]["team"] == "x"


@pytest.mark.parametrize(
    ("cls", "config", "named"),
    [
        (LabSwarmSpawner, {"extra_host_config": {"shm_size": "1G"}}, "extra_host_config"),
        (LabSwarmSpawner, {"links": {"db": "db"}}, "links"),
        (LabSwarmSpawner, {"extra_create_kwargs": {"environment": {}}}, "extra_create_kwargs"),
        (LabDockerSpawner, {"cpu_guarantee": 1.0}, "cpu_guarantee"),
    ],
)
def test_the_start_up_check_refuses_what_the_engine_cannot_honour(cls, config, named):
    with pytest.raises(LabSpecError, match=named) as err:
        make_spawner(cls, "x", **config).check_lab_config()
    assert "\n" not in str(err.value)


def test_a_setting_only_docker_has_is_refused_on_swarm_from_the_config():
    """warm_pool_size is no trait of LabSwarmSpawner: traitlets would only warn and drop it."""
    from traitlets.config import Config

    for section in ("LabSwarmSpawner", "DockerSpawner"):
        config = Config()
        config[section].warm_pool_size = 2
        spawner = LabSwarmSpawner(config=config, user=SimpleNamespace(name="x"), image="lab:1")
        with pytest.raises(LabSpecError, match="warm_pool_size cannot be honoured by LabSwarm"):
            spawner.check_lab_config()
    config = Config()
    config.LabSwarmSpawner.warm_pool_size = 0  # asks for nothing
    LabSwarmSpawner(config=config, user=SimpleNamespace(name="x"), image="lab:1").check_lab_config()


def test_a_callable_override_is_left_to_the_spawn():
    spawner = make_spawner(LabSwarmSpawner, "x", extra_host_config=lambda spawner: {})
    spawner.check_lab_config()
