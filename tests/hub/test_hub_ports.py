"""The hub's port checks on host networking as pure functions (tests/hub/test_impostor.py: the real hub)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labhub.hub.options import HOST_HTTP_PORT, HOST_HUB_PORT, HOST_PROXY_API_PORT
from labhub.hub.startup import (
    bind_refusal,
    has_capability,
    impostor_message,
    labs_get_bind_capability,
    labs_share_hub_network,
    squattable_ports,
    url_port,
)

pytestmark = pytest.mark.security


def test_ports_a_lab_could_take_are_named_by_their_setting():
    ports = {"hub_port": 8081, "ConfigurableHTTPProxy.api_url": 801, "port": 443}
    assert squattable_ports(ports, 1024) == ["hub_port (8081)"]
    # a host whose admin lowered the kernel's limit protects nothing
    assert len(squattable_ports(ports, 0)) == 3
    assert squattable_ports({"hub_port": None}, 1024) == []


def test_the_refusal_is_one_sentence_naming_the_way_out():
    message = impostor_message(["hub_port (8081)", "port (8443)"], 1024)
    assert message.count(". ") == 0 and message.endswith(".")
    for words in ("hub_port (8081)", str(HOST_HUB_PORT), str(HOST_PROXY_API_PORT), "1024"):
        assert words in message
    assert "c.HostNetworkGuard.allow_unprivileged_ports = True" in message


@pytest.mark.parametrize(
    ("settings", "shared"),
    [
        ({"network_name": "labhub-labs"}, False),
        ({"network_name": "host"}, True),
        ({"extra_host_config": {"network_mode": "host"}}, True),
        ({"profile_list": [{"slug": "fast", "spawner_override": {"network_name": "host"}}]}, True),
        ({"profile_list": [{"slug": "big", "spawner_override": {"mem_limit": "8G"}}]}, False),
        ({"profile_list": lambda spawner: []}, False),
    ],
)
def test_which_labs_share_the_hubs_network_namespace(settings, shared):
    spawner = SimpleNamespace(
        **{"network_name": "labhub-labs", "extra_host_config": {}, "profile_list": [], **settings}
    )
    assert labs_share_hub_network(spawner) is shared


@pytest.mark.parametrize(
    ("settings", "can_bind"),
    [
        ({}, False),
        ({"extra_host_config": {"cap_add": ["CHOWN"]}}, False),
        ({"extra_host_config": {"cap_add": ["cap_net_bind_service"]}}, True),
        ({"extra_container_spec": {"cap_add": ["NET_BIND_SERVICE"]}}, True),
        (
            {
                "profile_list": [
                    {"spawner_override": {"extra_host_config": {"cap_add": ["NET_BIND_SERVICE"]}}}
                ]
            },
            True,
        ),
    ],
)
def test_an_admin_cannot_hand_labs_the_bind_capability_unnoticed(settings, can_bind):
    spawner = SimpleNamespace(**{"extra_host_config": {}, "profile_list": [], **settings})
    assert labs_get_bind_capability(spawner) is can_bind


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://127.0.0.1:881/hub/", 881),
        ("https://lab.example.org/", 443),
        ("http://127.0.0.1", HOST_HTTP_PORT),
        ("unix+http://%2Ftmp%2Fhub.sock", None),
        ("", None),
    ],
)
def test_url_port(url, port):
    assert url_port(url) == port


STATUS = "Name:\tjupyterhub\nCapEff:\t{eff}\nCapAmb:\t{amb}\n"


def test_a_hub_that_cannot_bind_its_privileged_ports_says_how_to_let_it():
    none = STATUS.format(eff="0000000000000000", amb="0000000000000000")
    bind = STATUS.format(eff="0000000000000400", amb="0000000000000400")
    root = STATUS.format(eff="000001ffffffffff", amb="0000000000000000")
    assert has_capability(bind, "CapEff", 10) and not has_capability(none, "CapAmb", 10)
    assert bind_refusal(["hub_port (881)"], root) is None
    assert bind_refusal(["hub_port (881)"], bind) is None
    assert bind_refusal([], none) is None
    message = bind_refusal(["hub_port (881)"], none)
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in message and "881" in message
