"""labhub.lab.specs: who a lab runs as, the override merge and the hardening, without a daemon."""

from __future__ import annotations

import pytest

from labhub.lab.model import Lab, Overrides, container_spec, service_spec
from labhub.lab.specs import (
    ROOT_START_CAPS,
    deep_merge,
    harden_host_config,
    harden_service_container,
    run_as,
    unset_after_switch,
)


def test_direct_strategy_runs_as_lab_uid():
    spec = run_as("direct", 2100, 2200, "jovyan", "/home/jovyan")
    assert spec["user"] == "2100:2200"
    assert spec["environment"]["HOME"] == "/home/jovyan"
    assert "NB_UID" not in spec["environment"]


def test_docker_stacks_strategy_starts_as_root_and_drops():
    spec = run_as("docker-stacks", 2100, 2200, "jovyan", "/home/jovyan")
    assert spec["user"] == "0"
    env = spec["environment"]
    assert (env["NB_UID"], env["NB_GID"], env["NB_USER"], env["CHOWN_HOME"]) == (
        "2100",
        "2200",
        "jovyan",
        "yes",
    )


def test_unknown_strategy():
    with pytest.raises(ValueError, match="uid_strategy"):
        run_as("sudo", 1, 1, "x", "/home/x")


def test_hardening_keeps_harmless_settings_and_drops_escapes():
    hc = harden_host_config(
        {
            "privileged": True,
            "security_opt": ["no-new-privileges:false", "apparmor=unconfined", "label=level:s0"],
            "cap_add": ["SYS_ADMIN", "CAP_SYS_MODULE", "DAC_READ_SEARCH", "NET_BIND_SERVICE"],
            "pid_mode": "host",
            "userns_mode": "host",
            "devices": ["/dev/sda:/dev/sda"],
            "binds": ["/:/host"],
            "shm_size": "1G",
        },
        "2100:2100",
    )
    assert hc["privileged"] is False
    assert hc["security_opt"] == ["label=level:s0", "no-new-privileges:true"]
    assert hc["cap_add"] == ["NET_BIND_SERVICE"]
    assert hc["cap_drop"] == ["ALL"]
    assert not {"pid_mode", "userns_mode", "devices", "binds"} & set(hc)
    assert hc["shm_size"] == "1G"
    assert "cap_add" not in harden_host_config({"cap_add": ["ALL"]}, "2100:2100")


def test_service_hardening_uses_the_same_capability_rule():
    spec = harden_service_container(
        {"cap_add": ["SYS_ADMIN", "NET_BIND_SERVICE"], "tty": True, "user": "2100:2100"}
    )
    assert spec == {
        "cap_add": ["NET_BIND_SERVICE"],
        "cap_drop": ["ALL"],
        "tty": True,
        "user": "2100:2100",
    }
    bare = harden_service_container({"cap_add": ["CAP_SYS_PTRACE"], "user": "2100:2100"})
    assert "cap_add" not in bare and bare["cap_drop"] == ["ALL"]
    for user in ("0", "root", "", "0:0"):
        for_root = harden_service_container({"user": user, "cap_drop": []})
        assert for_root["cap_drop"] == ["ALL"]
        assert for_root["cap_add"] == harden_host_config({}, user)["cap_add"]


@pytest.mark.security
@pytest.mark.parametrize("user", ["2100:2100", "0"])
def test_a_lab_keeps_no_capability_it_does_not_need_whatever_the_override(user):
    """A device node, raw packets, file capabilities: never, for either start, on either engine."""
    escapes = ["MKNOD", "CAP_NET_RAW", "SETFCAP", "SETPCAP", "SYS_ADMIN"]
    hc = harden_host_config({"cap_add": escapes, "cap_drop": ["NET_BIND_SERVICE"]}, user)
    swarm = harden_service_container({"cap_add": escapes, "cap_drop": [], "user": user})
    for spec in (hc, swarm):
        assert spec["cap_drop"] == ["ALL"]
        kept = set(spec.get("cap_add", []))
        assert not kept & {"MKNOD", "NET_RAW", "CAP_NET_RAW", "SETFCAP", "SETPCAP", "FSETID"}
        assert not kept & {"NET_BIND_SERVICE", "SYS_CHROOT", "SYS_ADMIN"}
    if user == "2100:2100":
        assert "cap_add" not in hc  # it never was root: it needs none
    else:
        # what a start script needs to give HOME away and become the lab uid, nothing more
        assert set(hc["cap_add"]) == set(ROOT_START_CAPS)
        assert {"CHOWN", "SETUID", "SETGID"} <= set(hc["cap_add"])


@pytest.mark.security
def test_roots_pythons_in_a_docker_stacks_lab_ignore_the_users_site_until_the_switch():
    env = run_as("docker-stacks", 2100, 2100, "jovyan", "/home/jovyan")["environment"]
    assert env["PYTHONNOUSERSITE"] == "1" and env["PYTHONSAFEPATH"] == "1"
    # docker-stacks' start.sh unsets these after its root hooks, before it becomes the lab uid
    assert set(env["JUPYTER_ENV_VARS_TO_UNSET"].split(",")) == {
        "PYTHONNOUSERSITE",
        "PYTHONSAFEPATH",
    }
    # direct never runs as root: its Python keeps the user's site from the start
    direct = run_as("direct", 2100, 2100, "jovyan", "/home/jovyan")["environment"]
    assert not {"PYTHONNOUSERSITE", "PYTHONSAFEPATH", "JUPYTER_ENV_VARS_TO_UNSET"} & set(direct)


def test_unset_after_switch_keeps_every_name_once():
    assert unset_after_switch("SECRET, PYTHONSAFEPATH", "PYTHONNOUSERSITE,PYTHONSAFEPATH") == (
        "SECRET,PYTHONSAFEPATH,PYTHONNOUSERSITE"
    )
    assert unset_after_switch(None, "A") == "A"


def test_deep_merge():
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]}) == {
        "a": {"b": 3, "c": 2},
        "d": [2],
    }


@pytest.mark.security
@pytest.mark.parametrize("user", ["2100:2100", "0"])
def test_both_engines_translate_a_lab_with_the_same_capabilities(user):
    """Swarm's ContainerSpec carries CapabilityDrop/Add (API 1.41): the same rule, not a refusal."""
    lab = Lab(
        name="labhub-caps",
        image="image",
        command=["jupyterhub-singleuser"],
        environment={},
        user=user,
        workdir="/home/jovyan",
        mounts=[],
        labels={},
        network="labhub-labs",
        port=8888,
    )
    docker = Overrides(host_config={"cap_add": ["MKNOD"], "cap_drop": []})
    swarm = Overrides(container_spec={"cap_add": ["NET_RAW"], "cap_drop": [], "user": "0"})
    host = container_spec(lab, docker)["host_config"]
    service = service_spec(lab, swarm)["task_template"]["ContainerSpec"]
    assert service["User"] == user
    assert host["cap_drop"] == service["CapabilityDrop"] == ["ALL"]
    assert host.get("cap_add") == service.get("CapabilityAdd")
    assert (host.get("cap_add") is None) == (user != "0")
