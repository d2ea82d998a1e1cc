"""labhub.specs: who the container runs as and the host config it gets, without a daemon."""

from __future__ import annotations

import pytest

from labhub.specs import container_host_config, deep_merge, harden_host_config, run_as


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


MOUNTS = [{"Type": "bind", "Source": "/p/a", "Target": "/home/jovyan/work", "ReadOnly": False}]


def test_host_network_publishes_nothing():
    hc = container_host_config(network_name="host", mounts=MOUNTS)
    assert hc["network_mode"] == "host" and "port_bindings" not in hc
    assert hc["mounts"] == MOUNTS


def test_bridge_publishes_the_server_port_on_the_host_ip():
    hc = container_host_config(
        network_name="bridge", mounts=MOUNTS, publish_port=(8888, "127.0.0.1")
    )
    assert hc["port_bindings"] == {8888: ("127.0.0.1",)}


def test_named_network_uses_container_address():
    hc = container_host_config(network_name="labnet", mounts=MOUNTS)
    assert hc["network_mode"] == "labnet" and "port_bindings" not in hc


def test_limits():
    hc = container_host_config(network_name="host", mounts=[], mem_limit="2G", cpu_limit=1.5)
    assert (hc["mem_limit"], hc["cpu_period"], hc["cpu_quota"]) == ("2G", 100_000, 150_000)
    hc = container_host_config(
        network_name="host", mounts=[], cpu_limit=0.5, extra={"cpu_period": 50_000}
    )
    assert hc["cpu_quota"] == 25_000


def test_admin_extra_cannot_unharden():
    hc = container_host_config(
        network_name="host",
        mounts=[],
        extra={
            "privileged": True,
            "security_opt": ["no-new-privileges:false", "apparmor=unconfined"],
            "cap_add": ["SYS_ADMIN", "CAP_SYS_MODULE", "NET_BIND_SERVICE"],
            "shm_size": "1G",
        },
    )
    assert hc["privileged"] is False
    assert hc["security_opt"] == ["apparmor=unconfined", "no-new-privileges:true"]
    assert hc["cap_add"] == ["NET_BIND_SERVICE"]
    assert hc["shm_size"] == "1G"
    assert "cap_add" not in harden_host_config({"cap_add": ["ALL"]})


def test_deep_merge():
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]}) == {
        "a": {"b": 3, "c": 2},
        "d": [2],
    }
