"""The lab's settings as a value: read once from the traits, a profile merged as data, one build function.

No daemon and no disk: these check :mod:`labhub.lab.settings`, :mod:`labhub.lab.build`,
the warm pool's template made from the same settings value, and the pool's one state map.
"""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from labhub.hub.options import DEFAULT_LAB_GID, DEFAULT_LAB_UID
from labhub.lab import settings as checks
from labhub.lab.build import build_lab, fixed_overrides, lab_environment
from labhub.lab.model import LABEL_LAB, Overrides, container_spec
from labhub.lab.mounts import LABEL_USER, CifsCredentials, parse_cifs_share
from labhub.lab.settings import LabSettings, merge_profile
from labhub.pool import model as pool
from labhub.pool import warm_pool
from labhub.profiles.rules import Profile, parse_profile_list
from labhub.spawner.docker import LabDockerSpawner
from labhub.spawner.settings import LabSpawnError, settings_from_traits
from labhub.spawner.swarm import LabSwarmSpawner

from ..support.pools import pool_from_settings

SETTINGS = LabSettings(lab_root="/srv/lab", image="lab:1", network_name="labhub-labs")
SHARE = {"name": "fin", "device": "//srv/fin", "mount_path": "/mnt/fin", "credentials": "guest"}


# --- the value and its checks ----------------------------------------------------------


def test_folders_default_under_lab_root_and_ids_come_from_one_place():
    assert SETTINGS.personal_notebooks_dir == "/srv/lab/personal_notebooks"
    assert SETTINGS.shared_notebooks_dir == "/srv/lab/shared_notebooks"
    assert SETTINGS.packages_dir == "/srv/lab/packages"
    assert (SETTINGS.lab_uid, SETTINGS.lab_gid) == (DEFAULT_LAB_UID, DEFAULT_LAB_GID)
    assert LabDockerSpawner.class_traits()["lab_uid"].default_value == DEFAULT_LAB_UID
    assert LabDockerSpawner.class_traits()["lab_gid"].default_value == DEFAULT_LAB_GID
    with pytest.raises(dataclasses.FrozenInstanceError):
        SETTINGS.lab_uid = 0


def test_the_gateway_token_stays_out_of_the_repr():
    settings = dataclasses.replace(SETTINGS, gateway_auth_token="s3cret-token")
    assert "s3cret-token" not in repr(settings)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("lab_uid", 0),
        ("lab_gid", -5),
        ("lab_root", "labdata"),
        ("personal_notebooks_dir", "./people"),
        ("packages_dir", "pkgs"),
        ("gateway_url", "eg.lab:8888"),
        ("cifs_shares", [SHARE, SHARE]),
        ("cifs_shares", [{**SHARE, "device": "fileserver:/fin"}]),
    ],
)
def test_traits_and_the_value_refuse_with_the_same_sentence(setting, value):
    with pytest.raises(Exception) as by_trait:
        LabDockerSpawner(**{setting: value})
    with pytest.raises(ValueError) as by_value:
        if setting == "cifs_shares":
            checks.cifs_shares(value)
        else:
            checks.check_settings(dataclasses.replace(SETTINGS, **{setting: value}))
    assert str(by_value.value) in str(by_trait.value)
    assert str(by_value.value).endswith(".") and "\n" not in str(by_value.value)
    assert setting.split("_")[0] in str(by_value.value) or "cifs" in setting


def test_settings_are_read_from_a_spawner_with_no_user():
    c = Config()
    c.LabDockerSpawner.image = "lab:2"  # DockerSpawner names its container when image is set
    c.LabDockerSpawner.lab_root = "/data/lab/"
    c.LabDockerSpawner.mem_limit = "1G"
    c.LabDockerSpawner.cifs_shares = [SHARE]
    c.LabDockerSpawner.extra_host_config = {"shm_size": "1G"}
    spawner = LabDockerSpawner(config=c)
    assert spawner.object_name == ""
    settings = settings_from_traits(spawner)
    assert settings.image == "lab:2" and settings.lab_root == "/data/lab"
    assert settings.personal_notebooks_dir == "/data/lab/personal_notebooks"
    assert settings.mem_limit == 1024**3
    assert settings.cifs_shares == (parse_cifs_share(SHARE),)
    assert settings.extra["extra_host_config"] == {"shm_size": "1G"}
    assert settings.placement_constraints == ()
    swarm = LabSwarmSpawner(placement_constraints=["node.role == worker"])
    assert settings_from_traits(swarm).placement_constraints == ("node.role == worker",)


# --- a profile merged as data --------------------------------------------------------------


def test_a_profile_merges_dicts_over_the_configured_value_and_replaces_the_rest():
    configured = dataclasses.replace(
        SETTINGS,
        environment={"A": "1", "B": "2"},
        mem_limit=1,
        extra={"extra_host_config": {"shm_size": "1G"}},
    )
    merged = merge_profile(
        configured,
        {
            "environment": {"B": "3"},
            "mem_limit": 2,
            "extra_host_config": {"cpu_shares": 512},
            "placement_constraints": ["node.labels.gpu == true"],
        },
    )
    assert merged.environment == {"A": "1", "B": "3"}
    assert merged.mem_limit == 2
    assert merged.extra["extra_host_config"] == {"shm_size": "1G", "cpu_shares": 512}
    assert merged.placement_constraints == ("node.labels.gpu == true",)
    # the configured value is untouched: the next spawn starts from it again
    assert configured.environment == {"A": "1", "B": "2"} and configured.mem_limit == 1


def test_a_merged_value_is_held_to_the_traits_rules():
    with pytest.raises(ValueError, match="lab_uid must be a positive id"):
        merge_profile(SETTINGS, {"lab_uid": 0})
    with pytest.raises(ValueError, match="unique"):
        merge_profile(SETTINGS, {"cifs_shares": [SHARE, SHARE]})
    assert merge_profile(SETTINGS, {"lab_root": "/data/x/"}).lab_root == "/data/x"
    seen = []
    merge_profile(SETTINGS, {"mem_limit": "2G"}, lambda key, value: seen.append(key) or value)
    assert seen == ["mem_limit"]


def test_the_spawner_merges_a_profile_without_setting_anything_on_itself():
    (large, odd) = parse_profile_list(
        [
            {"display_name": "Large", "spawner_override": {"mem_limit": "768M"}},
            {"display_name": "Odd", "spawner_override": {"mem_limit": "lots"}},
        ]
    )
    spawner = LabDockerSpawner(mem_limit="256M", user=SimpleNamespace(name="ann"))
    assert spawner.settings_for(large).mem_limit == 768 * 1024**2
    assert spawner.mem_limit == 256 * 1024**2
    with pytest.raises(LabSpawnError, match="Profile 'odd' sets mem_limit"):
        spawner.settings_for(odd)
    assert spawner.use_lab_profile(large) is spawner.lab_settings()
    assert spawner.use_lab_profile(None).mem_limit == 256 * 1024**2


def test_the_spawns_image_is_the_profiles_or_the_one_dockerspawner_took(monkeypatch):
    from dockerspawner import DockerSpawner

    (gpu,) = parse_profile_list([{"display_name": "GPU", "spawner_override": {"image": "lab:gpu"}}])
    spawner = LabDockerSpawner(image="lab:1", user=SimpleNamespace(name="ann"))
    spawner.use_lab_profile(gpu)
    assert spawner.lab_image() == "lab:gpu" and spawner.image == "lab:1"
    pulled = []

    async def pull_image(self, image):
        pulled.append(image)

    monkeypatch.setattr(DockerSpawner, "pull_image", pull_image)
    asyncio.run(spawner.pull_image(spawner.image))  # what DockerSpawner.start asks for
    assert pulled == ["lab:gpu"]
    spawner.image = "lab:chosen"  # DockerSpawner.start's pick from allowed_images
    assert spawner.lab_image() == "lab:chosen"
    assert spawner.resolved_settings().image == "lab:chosen"


# --- the one build function ----------------------------------------------------------------


def test_build_lab_is_the_users_lab():
    lab = build_lab(
        SETTINGS,
        "Ann Lee",
        command=["jupyterhub-singleuser"],
        hub_environment={"JUPYTERHUB_API_TOKEN": "t0ken", "MEM_LIMIT": "1"},
        port=9000,
    )
    assert lab.name.startswith("labhub-") and lab.image == "lab:1"
    assert lab.user == f"{DEFAULT_LAB_UID}:{DEFAULT_LAB_GID}" and lab.workdir == "/home/jovyan"
    assert lab.labels[LABEL_LAB] == "true" and lab.labels[LABEL_USER]
    assert [m["Target"] for m in lab.mounts] == [
        "/home/jovyan/work",
        "/home/jovyan/shared",
        "/opt/labhub/packages",
    ]
    assert lab.port == 9000 and lab.publish_port and lab.network == "labhub-labs"
    assert lab.environment["JUPYTERHUB_API_TOKEN"] == "t0ken"
    assert "MEM_LIMIT" not in lab.environment  # the settings say no limit, whatever the hub had
    assert lab.environment["HOME"] == "/home/jovyan"
    assert lab.environment["PYTHONUSERBASE"] == "/opt/labhub/packages"
    assert lab.environment["JUPYTER_IMAGE_SPEC"] == "lab:1"
    assert "/home/jovyan" in lab.tmpfs
    container_spec(lab, fixed_overrides(SETTINGS))  # it translates


def test_the_environment_takes_the_settings_over_the_hubs_derived_values():
    settings = dataclasses.replace(
        SETTINGS,
        mem_limit=2048,
        cpu_limit=1.5,
        environment={"LAB": "large", "PER_USER": lambda spawner: "x"},
        gateway_url="https://eg:8888",
        persistent_packages=False,
    )
    env = lab_environment(
        settings,
        "ann",
        {"MEM_LIMIT": "1", "JUPYTERHUB_DEFAULT_URL": "/tree", "PER_USER": "x"},
        default_url="/lab",
    )
    assert env["MEM_LIMIT"] == "2048" and env["CPU_LIMIT"] == "1.5"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab" and env["LAB"] == "large"
    assert env["PER_USER"] == "x"  # a per-user value stays as the hub computed it
    assert env["KERNEL_USERNAME"] == "ann" and env["JUPYTER_GATEWAY_URL"] == "https://eg:8888"
    assert "PYTHONUSERBASE" not in env


def test_gpus_reach_the_lab_as_the_engine_takes_them():
    one_gpu = Profile(slug="gpu", display_name="GPU", gpus=1)
    shared = Profile(slug="all", display_name="All", gpus="shared")
    docker = build_lab(SETTINGS, "ann", command=["x"], profile=one_gpu, gpu_ids=("1",))
    assert docker.gpu_ids == ("1",) and not docker.gpu_count
    by_env = build_lab(
        dataclasses.replace(SETTINGS, gpu_request="environment"),
        "ann",
        command=["x"],
        profile=one_gpu,
        gpu_ids=("1",),
    )
    assert by_env.environment["NVIDIA_VISIBLE_DEVICES"] == "1" and not by_env.gpu_ids
    swarm = build_lab(SETTINGS, "ann", command=["x"], profile=shared, hub_assigns_gpus=False)
    # Swarm cannot keep a shared lab off GPUs it gave others (the start-up check refuses it)
    assert swarm.environment["NVIDIA_VISIBLE_DEVICES"] == "void" and not swarm.gpu_ids
    assert build_lab(SETTINGS, "ann", command=["x"]).gpu_ids == ()


def test_cifs_credentials_are_passed_in_and_reach_only_the_volume():
    settings = dataclasses.replace(
        SETTINGS, cifs_shares=checks.cifs_shares([{**SHARE, "credentials": "auth_state"}])
    )
    lab = build_lab(
        settings,
        "ann",
        command=["x"],
        cifs_credentials={"fin": CifsCredentials(username="ann", password="pa55word!")},
    )
    share = next(m for m in lab.mounts if m["Target"] == "/mnt/fin")
    assert "pa55word!" in str(share["VolumeOptions"])
    assert "pa55word!" not in str(lab.environment) + str(lab.labels)


# --- the warm pool's template from the same settings value --------------------------------


def test_the_pool_template_comes_from_two_stand_in_usernames():
    template, targets, overrides = pool.pool_template(SETTINGS)
    assert targets == ["/home/jovyan/work", "/opt/labhub/packages"]
    assert LABEL_USER not in template.labels  # a pool container belongs to nobody yet
    assert overrides == Overrides()
    waiting = pool.template_lab(template, targets, "/srv/lab/.warm-pool", "0")
    _, key = pool.pool_spec(waiting, overrides)
    alice = build_lab(SETTINGS, "alice", command=["jupyterhub-singleuser"], port=47001)
    binds = pool.fit(alice, overrides, waiting, key)
    assert {b.source for b in binds} == {
        "/srv/lab/personal_notebooks/alice",
        "/srv/lab/packages/alice",
    }


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"remove": False}, "remove"),
        ({"cifs_shares": checks.cifs_shares([SHARE])}, "Windows shares"),
        ({"uid_strategy": "docker-stacks"}, "direct"),
        ({"extra": {"extra_host_config": lambda spawner: {}}}, "extra_host_config"),
    ],
)
def test_settings_no_pool_can_serve_are_refused(changes, reason):
    with pytest.raises(pool.PoolMismatch, match=reason):
        pool.pool_template(dataclasses.replace(SETTINGS, **changes))


# --- the pool's one state map ----------------------------------------------------------------


def test_a_pool_container_is_in_one_state_at_a_time():
    calls = []

    async def docker(method, *args, **kwargs):
        calls.append((method, args))
        if method == "inspect_container":
            return {"Id": "abc", "State": {"Running": True}}
        return None

    async def scenario():
        running = pool_from_settings(SETTINGS, docker, size=2, pool_dir="/srv/lab/.warm-pool")
        running.containers["labhub-pool-a"] = warm_pool.SlotState("a", warm_pool.WAITING)
        running.containers["labhub-pool-b"] = warm_pool.SlotState("b", warm_pool.STARTING)
        assert await running.take("labhub-ann") == ("abc", "a")
        assert ("rename", ("labhub-pool-a", "labhub-ann")) in calls
        assert list(running.containers) == ["labhub-pool-b"]  # taken: a user's lab now
        assert await running.take("labhub-ben") is None  # b is not ready yet

    asyncio.run(scenario())
