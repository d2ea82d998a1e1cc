"""labhub.hub.proxy: the lab's start-up duties run whatever authenticator the hub uses.

Each hub here calls ``labhub.configure()`` and then names another authenticator
below it, as the README allows ("lines below it win"): JupyterHub's own ``dummy``.
The settings check, the labs' network and the warm pool must not depend on it.
"""

from __future__ import annotations

import contextlib
import secrets

import docker
import pytest

from ..support.contents import put_file
from ..support.hubconfig import AUTHENTICATORS, configured_config
from ..support.pools import free_pool
from ..support.waiting import wait_until
from .test_startup import hub_refusal, refusal_sentence


def other_auth_config(image: str, lab_root, prefix: str, network: str, subnet: str, extra=""):
    """configure() on its isolated-network defaults, then JupyterHub's dummy login below it."""
    return configured_config(
        image,
        lab_root,
        prefix,
        # a fresh config: configure() binds the hub to the labs' network gateway
        before='c.JupyterHub.pop("hub_ip", None)\n' + extra,
        after=AUTHENTICATORS["dummy"],
        network=network,
        network_subnet=subnet,
    )


@pytest.fixture
def lab_network(docker_client):
    """A labs' network name and subnet no engine has yet; removed at the end."""
    name = "labt-net-" + secrets.token_hex(3)
    subnet = f"10.219.{secrets.randbelow(250) + 1}.0/24"
    yield name, subnet
    for container in docker_client.api.containers(all=True, filters={"network": name}):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(container["Id"], force=True)
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.networks.get(name).remove()


def test_dummy_authenticator_hub_makes_the_network_fills_the_pool_and_serves_a_lab(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, lab_network, docker_client
):
    name, subnet = lab_network
    with pytest.raises(docker.errors.NotFound):
        docker_client.networks.get(name)
    config = other_auth_config(
        lab_image, lab_root, lab_prefix, name, subnet, "c.LabDockerSpawner.warm_pool_size = 2"
    )
    hub = hub_factory(config)
    assert "authenticator: jupyterhub.auth.DummyAuthenticator" in hub.log_text().replace(
        "Using Authenticator: ", "authenticator: "
    )
    # the hub listens on the network's gateway, which exists because start-up made it
    assert docker_client.networks.get(name).attrs["IPAM"]["Config"][0]["Subnet"] == subnet
    # full before anyone logs in, seen by the engine
    wait_until(
        lambda: len(free_pool(docker_client, lab_prefix)) == 2, 120, what="a pool of 2 running"
    )
    hub.spawn("ann")
    put_file(hub, "ann", "work/dummy-login.txt", "served")
    hub.stop_server("ann")
    assert (lab_root / "personal_notebooks" / "ann" / "dummy-login.txt").read_text() == "served"


def test_dummy_authenticator_hub_refuses_a_malformed_share_at_start(
    tmp_path, lab_image, lab_root, lab_prefix, lab_network
):
    name, subnet = lab_network
    share = 'c.LabDockerSpawner.cifs_shares = [{"name": "Finance Team", "device": "//h/f"}]'
    config = other_auth_config(lab_image, lab_root, lab_prefix, name, subnet, share)
    code, log = hub_refusal(tmp_path, lab_image, config, {})
    assert code != 0
    sentence = refusal_sentence(log)
    assert "cifs_shares" in sentence or "name" in sentence, sentence
    assert "Traceback" not in log
