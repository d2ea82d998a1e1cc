"""labhub.lab.specs: who a lab runs as, the override merge and the hardening, without a daemon."""

from __future__ import annotations

import pytest

from labhub.lab.specs import deep_merge, harden_host_config, harden_service_container, run_as


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
        }
    )
    assert hc["privileged"] is False
    assert hc["security_opt"] == ["label=level:s0", "no-new-privileges:true"]
    assert hc["cap_add"] == ["NET_BIND_SERVICE"]
    assert not {"pid_mode", "userns_mode", "devices", "binds"} & set(hc)
    assert hc["shm_size"] == "1G"
    assert "cap_add" not in harden_host_config({"cap_add": ["ALL"]})


def test_service_hardening_uses_the_same_capability_rule():
    spec = harden_service_container({"cap_add": ["SYS_ADMIN", "NET_BIND_SERVICE"], "tty": True})
    assert spec == {"cap_add": ["NET_BIND_SERVICE"], "tty": True}
    assert "cap_add" not in harden_service_container({"cap_add": ["CAP_SYS_PTRACE"]})


def test_deep_merge():
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]}) == {
        "a": {"b": 3, "c": 2},
        "d": [2],
    }
