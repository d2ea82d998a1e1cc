"""The challenge port: it answers the CA's tokens only, sends the rest to HTTPS, and no lab may hold it."""

from __future__ import annotations

import logging
import socket
from types import SimpleNamespace

import pytest
import requests
from jupyterhub.utils import random_port
from traitlets.config import Config

from labhub.certs.challenge import ChallengeServer, ChallengeServerError
from labhub.hub.startup import hub_ports, squattable_ports

LOG = logging.getLogger("acme-test")


@pytest.fixture
def server():
    port = random_port()
    running = ChallengeServer("127.0.0.1", port, "https://lab.example.org:8443", LOG).start()
    yield running, f"http://127.0.0.1:{port}"
    running.stop()


def test_known_tokens_are_answered_unknown_ones_are_not(server):
    running, base = server
    running.answers["/.well-known/acme-challenge/tok"] = "tok.thumbprint"
    r = requests.get(f"{base}/.well-known/acme-challenge/tok", timeout=5)
    assert (r.status_code, r.text) == (200, "tok.thumbprint")
    r = requests.get(f"{base}/.well-known/acme-challenge/other", timeout=5)
    assert r.status_code == 404


def test_everything_else_is_sent_to_the_hubs_https(server):
    _, base = server
    r = requests.get(f"{base}/hub/login?next=/x", timeout=5, allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"] == "https://lab.example.org:8443/hub/login?next=/x"


def test_a_taken_challenge_port_is_one_sentence():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ChallengeServerError) as err:
            ChallengeServer("127.0.0.1", port, "https://lab.example.org", LOG)
    assert str(err.value) == (
        f"The ACME challenge port {port} cannot be bound on 127.0.0.1 (Address already in use); "
        "free it or set acme_challenge_port."
    )


@pytest.mark.security
def test_labs_on_host_networking_may_not_be_able_to_take_the_challenge_port():
    """A lab holding the challenge port while the hub restarts could obtain the hub's certificate."""
    config = Config()
    config.LabAcme.domain = "lab.example.org"
    config.LabAcme.challenge_port = 8080
    app = SimpleNamespace(config=config, hub=None, bind_url="https://127.0.0.1:443/", hub_port=881)
    proxy = SimpleNamespace(api_url="http://127.0.0.1:801")
    ports = hub_ports(app, proxy)
    assert ports["acme_challenge_port"] == 8080
    assert squattable_ports(ports, 1024) == ["acme_challenge_port (8080)"]
    config.LabAcme.challenge_port = 80
    assert squattable_ports(hub_ports(app, proxy), 1024) == []


def test_the_proxy_preload_is_added_to_node_options_only_when_it_can_load(tmp_path):
    from labhub.certs.proxy_reload import RELOAD_SCRIPT, node_options, preload_env

    assert RELOAD_SCRIPT.is_file()
    assert node_options("--max-old-space-size=512") == (
        f"--max-old-space-size=512 --require {RELOAD_SCRIPT}"
    )
    spaced = tmp_path / "a folder" / "reload.js"
    spaced.parent.mkdir()
    spaced.write_text("")
    assert node_options("", spaced) is None  # NODE_OPTIONS cannot quote a path
    assert node_options("", tmp_path / "missing.js") is None
    env = preload_env("/d/acme/fullchain.pem", "/d/acme/privkey.pem", {})
    assert env["LABHUB_TLS_CERT"] == "/d/acme/fullchain.pem"
    assert env["LABHUB_TLS_KEY"] == "/d/acme/privkey.pem"
