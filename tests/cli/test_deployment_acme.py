"""``labhub init --acme``: a deployment whose hub gets its certificate from an ACME CA and keeps it."""

from __future__ import annotations

import os

import yaml
from traitlets.config import Config

from labhub.cli.main import main

from .test_deployment import read_env


def load_deployment_config(deploy, monkeypatch) -> Config:
    """The hub's config as the container would load it: .env in the environment, ./data mounted."""
    for key in list(os.environ):
        if key.startswith("LABHUB_"):
            monkeypatch.delenv(key)
    for key, value in read_env(deploy / ".env").items():
        monkeypatch.setenv(key, value)
    # the compose file mounts ./data and ./ssl under /srv/jupyterhub; here the folders stand in
    text = (deploy / "jupyterhub_config.py").read_text()
    for folder in ("data", "ssl"):
        text = text.replace(f"/srv/jupyterhub/{folder}", str(deploy / folder))
    c = Config()
    exec(compile(text, "jupyterhub_config.py", "exec"), {"get_config": lambda: c})
    return c


def test_init_acme_writes_a_deployment_that_obtains_and_keeps_its_certificate(
    tmp_path, monkeypatch
):
    deploy = tmp_path / "deploy"
    assert (
        main(["init", str(deploy), "--acme", "lab.example.org", "--acme-email", "a@example.org"])
        == 0
    )

    env = read_env(deploy / ".env")
    assert env["LABHUB_ACME_DOMAIN"] == "lab.example.org"
    assert env["LABHUB_ACME_EMAIL"] == "a@example.org"
    assert env["LABHUB_ACME_CHALLENGE_PORT"] == "80"
    assert env["LABHUB_PORT"] == "443"
    c = load_deployment_config(deploy, monkeypatch)
    assert c.LabAcme.domain == "lab.example.org"
    assert c.LabAcme.email == "a@example.org"
    assert c.LabAcme.challenge_port == 80
    assert c.LabAcme.challenge_ip == "0.0.0.0"
    assert c.JupyterHub.port == 443
    # the certificate and the account key live in data/, the folder compose keeps across down/up
    acme = deploy / "data" / "acme"
    assert c.JupyterHub.ssl_cert == str(acme / "fullchain.pem")
    assert c.JupyterHub.ssl_key == str(acme / "privkey.pem")
    assert c.LabAcme.data_dir == str(deploy / "data")
    hub = yaml.safe_load((deploy / "docker-compose.yml").read_text())["services"]["hub"]
    assert "./data:/srv/jupyterhub/data" in hub["volumes"]
    # host networking: the challenge port the hub binds is the host's own port 80
    assert hub["network_mode"] == "host"


def test_init_without_acme_keeps_the_self_signed_certificate(tmp_path, monkeypatch):
    deploy = tmp_path / "deploy"
    assert main(["init", str(deploy)]) == 0
    env = read_env(deploy / ".env")
    assert "LABHUB_ACME_DOMAIN" not in env
    assert env["LABHUB_PORT"] == "8443"
    assert "# LABHUB_ACME_DOMAIN=" in (deploy / ".env").read_text()
    c = load_deployment_config(deploy, monkeypatch)
    assert c.JupyterHub.ssl_cert == str(deploy / "ssl" / "labhub.crt")
    assert "domain" not in c.LabAcme
