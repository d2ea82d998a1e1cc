"""What a warm-pool container is and which labs it can become (pure, no daemon)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from labhub.lab.model import Lab, Overrides
from labhub.pool import model as pool


def bind(source: str, target: str, read_only: bool = False) -> dict:
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only}


def lab_of(user: str, **changes) -> Lab:
    base = Lab(
        name=f"lab-{user}",
        image="labhub/singleuser:test",
        command=["jupyterhub-singleuser", "--KernelManager.transport=ipc"],
        environment={"HOME": "/home/jovyan", "JUPYTERHUB_USER": user, "JUPYTERHUB_API_TOKEN": "t"},
        user="2100:2100",
        workdir="/home/jovyan",
        mounts=[
            bind(f"/srv/lab/personal_notebooks/{user}", "/home/jovyan/work"),
            bind("/srv/lab/shared_notebooks", "/home/jovyan/shared"),
            bind(f"/srv/lab/packages/{user}", "/opt/labhub/packages"),
        ],
        labels={"org.labhub.lab": "true", "org.labhub.user": user},
        network="host",
        port=40000,
        mem_limit=2**30,
        tmpfs={"/home/jovyan": "uid=2100,gid=2100,mode=1777"},
    )
    return replace(base, **changes)


TARGETS = ["/home/jovyan/work", "/opt/labhub/packages"]


def template() -> Lab:
    stand_in = lab_of("stand-in", environment={"HOME": "/home/jovyan"})
    return pool.template_lab(stand_in, TARGETS, "/srv/lab/.warm-pool", "0")


def template_key() -> str:
    return pool.pool_spec(template(), Overrides())[1]


def test_per_user_binds_are_the_folders_that_differ_between_two_users():
    assert pool.per_user_binds(lab_of("a").mounts, lab_of("b").mounts) == TARGETS


def test_a_volume_named_per_user_cannot_be_pooled():
    first = [{"Type": "volume", "Source": "cifs-a", "Target": "/mnt/share"}]
    second = [{"Type": "volume", "Source": "cifs-b", "Target": "/mnt/share"}]
    with pytest.raises(pool.PoolMismatch, match="/mnt/share"):
        pool.per_user_binds(first, second)


def test_the_template_keeps_no_user_no_token_and_waits():
    lab = template()
    assert lab.environment == {"HOME": "/home/jovyan"}
    # isolated: no PYTHON* variable, user site or current folder is read as code
    assert lab.command[:3] == ["python3", "-I", "-c"] and "mkfifo" in lab.command[3]
    slots = [m for m in lab.mounts if m.get("BindOptions")]
    assert [(m["Target"], m["Source"]) for m in slots] == [
        ("/home/jovyan/work", "/srv/lab/.warm-pool/0/0"),
        ("/opt/labhub/packages", "/srv/lab/.warm-pool/0/1"),
    ]
    assert all(m["BindOptions"] == {"Propagation": "rslave"} for m in slots)
    shared = [m for m in lab.mounts if m["Target"] == "/home/jovyan/shared"]
    assert shared == [bind("/srv/lab/shared_notebooks", "/home/jovyan/shared")]


def test_a_users_lab_fits_and_gets_its_own_folders():
    binds = pool.fit(lab_of("alice"), Overrides(), template(), template_key())
    assert [(b.index, b.source, b.target) for b in binds] == [
        (0, "/srv/lab/personal_notebooks/alice", "/home/jovyan/work"),
        (1, "/srv/lab/packages/alice", "/opt/labhub/packages"),
    ]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"mem_limit": 2 * 2**30}, "container settings"),  # a profile with more memory
        ({"image": "other:1"}, "container settings"),
        ({"gpu_ids": ("0",)}, "GPUs"),
        ({"command": ["start-notebook.sh"]}, "command"),
        ({"environment": {"HOME": "/root"}}, "HOME"),
    ],
)
def test_a_lab_that_differs_from_the_pool_starts_the_normal_way(changes, reason):
    with pytest.raises(pool.PoolMismatch, match=reason):
        pool.fit(lab_of("alice", **changes), Overrides(), template(), template_key())


def test_an_override_the_pool_does_not_have_makes_a_normal_start():
    mine = Overrides(host_config={"shm_size": "1g"})
    with pytest.raises(pool.PoolMismatch):
        pool.fit(lab_of("alice"), mine, template(), template_key())


def test_the_pool_key_ignores_the_slot_but_not_the_settings():
    first, key_a = pool.pool_spec(template(), Overrides())
    other_slot = pool.template_lab(
        lab_of("stand-in", environment={"HOME": "/home/jovyan"}),
        TARGETS,
        "/srv/lab/.warm-pool",
        "9",
    )
    _, key_b = pool.pool_spec(other_slot, Overrides())
    _, key_c = pool.pool_spec(replace(template(), mem_limit=1), Overrides())
    assert key_a == key_b != key_c
    assert first["host_config"]["security_opt"] == ["no-new-privileges:true"]


def test_the_hand_over_command_carries_no_environment():
    lab = lab_of("alice")
    command = pool.go_command(
        lab, {"/home/jovyan/work": (1, 2, False), "/home/jovyan/data": (1, 3, True)}, 30
    )
    assert "JUPYTERHUB_API_TOKEN" not in " ".join(command[:4])
    order = json.loads(command[4])
    assert order == {
        "argv": ["--KernelManager.transport=ipc"],
        "cwd": "/home/jovyan",
        "mounts": {"/home/jovyan/work": [1, 2, False], "/home/jovyan/data": [1, 3, True]},
        "timeout": 30,
    }
    assert "t" not in order.values()


@pytest.mark.security
def test_the_hand_over_runs_isolated_and_checks_read_only_slots():
    command = pool.go_command(lab_of("alice"), {}, 30)
    assert command[:3] == ["python3", "-I", "-c"]
    for script in (pool.GO, pool.WAITER):
        assert "os.statvfs(target).f_flag & os.ST_RDONLY" in script


def test_a_slot_names_a_pool_container():
    slot = pool.slot_name()
    assert len(slot) == 12 and int(slot, 16) >= 0


# --- a pool larger than the machine can hold -------------------------------------------

MEMINFO = """MemTotal:       24576000 kB
MemFree:         1000000 kB
MemAvailable:    3000000 kB
"""


def test_the_pool_leaves_a_tenth_of_the_host_or_2_gib_to_labs_unless_told():
    from labhub.pool.warm_pool import MIN_MEMORY_RESERVE, meminfo_bytes, memory_reserve

    assert meminfo_bytes(MEMINFO, "MemAvailable") == 3000000 * 1024
    assert meminfo_bytes(MEMINFO, "Nope") is None
    assert memory_reserve(MEMINFO, None) == 24576000 * 1024 // 10
    assert memory_reserve("MemTotal: 4096000 kB\n", None) == MIN_MEMORY_RESERVE
    assert memory_reserve(MEMINFO, 8 * 1024**3) == 8 * 1024**3


def test_no_waiting_container_starts_into_the_labs_reserve():
    from labhub.pool.warm_pool import memory_shortfall

    assert memory_shortfall(MEMINFO, 2 * 1024**3) == ""
    why = memory_shortfall(MEMINFO, 4 * 1024**3)
    assert "2929 MiB of memory available" in why and "4096 MiB" in why
    assert memory_shortfall("", 4 * 1024**3) == ""  # no /proc/meminfo: no guard


def test_pool_containers_see_no_gpu_and_serve_no_lab_that_sees_one():
    """The runtime reads NVIDIA_VISIBLE_DEVICES at container start: the pool's must be the lab's."""
    gpu_less = {"HOME": "/home/jovyan", "NVIDIA_VISIBLE_DEVICES": "void"}
    stand_in = lab_of("stand-in", environment=gpu_less)
    waiting = pool.template_lab(stand_in, TARGETS, "/srv/lab/.warm-pool", "0")
    assert waiting.environment["NVIDIA_VISIBLE_DEVICES"] == "void"
    key = pool.pool_spec(waiting, Overrides())[1]
    alice = lab_of("alice", environment={**gpu_less, "JUPYTERHUB_USER": "alice"})
    assert pool.fit(alice, Overrides(), waiting, key)
    with pytest.raises(pool.PoolMismatch, match="NVIDIA_VISIBLE_DEVICES"):
        with_gpu = {**gpu_less, "NVIDIA_VISIBLE_DEVICES": "0"}
        pool.fit(lab_of("bob", environment=with_gpu), Overrides(), waiting, key)
