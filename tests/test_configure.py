"""labhub.configure(): idempotent, overridable, environment-driven, and strict about bad values."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from labhub.certs import make_self_signed
from labhub.hub_config import OPTIONS, LabConfigError, configure, resolve_options


@pytest.fixture
def base(tmp_path, monkeypatch):
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    return {"data_dir": str(tmp_path / "data"), "lab_root": str(tmp_path / "lab")}


def test_twice_gives_the_same_config(base):
    once, twice = Config(), Config()
    configure(once, **base)
    configure(twice, **base)
    configure(twice, **base)
    assert once == twice
    assert [s["name"] for s in twice.JupyterHub.services] == ["idle-culler"]


def test_what_it_wires(base):
    c = Config()
    configure(c, **base, admin_users=["ann"], mem_limit="2G", idle_timeout=600)
    assert c.JupyterHub.spawner_class == "labhub.LabDockerSpawner"
    assert c.JupyterHub.authenticator_class == "labhub.LabAuthenticator"
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.shutdown_on_logout is True
    assert c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.LabDockerSpawner.lab_root == base["lab_root"]
    assert c.LabDockerSpawner.mem_limit == "2G"
    assert c.Authenticator.admin_users == {"ann"}
    assert "--timeout=600" in c.JupyterHub.services[0]["command"]
    assert c.JupyterHub.cookie_secret_file.startswith(base["data_dir"])


def test_later_lines_win_and_earlier_services_are_kept(base):
    c = Config()
    c.JupyterHub.services = [{"name": "grafana", "url": "http://127.0.0.1:3000"}]
    configure(c, **base)
    c.LabDockerSpawner.lab_root = "/elsewhere"
    assert c.LabDockerSpawner.lab_root == "/elsewhere"
    assert [s["name"] for s in c.JupyterHub.services] == ["grafana", "idle-culler"]


def test_environment_drives_every_option(base, monkeypatch):
    monkeypatch.setenv("LABHUB_SPAWNER", "swarm")
    monkeypatch.setenv("LABHUB_LAB_UID", "3000")
    monkeypatch.setenv("LABHUB_SHUTDOWN_ON_LOGOUT", "false")
    monkeypatch.setenv("LABHUB_LDAP_SERVERS", "dc1.corp:636, dc2.corp:636")
    monkeypatch.setenv("LABHUB_LDAP_ALLOWED_GROUPS", "CN=DS,OU=G,DC=corp;CN=Ops,OU=G,DC=corp")
    monkeypatch.setenv("LABHUB_AUTH_MODE", "ldap")
    monkeypatch.setenv("LABHUB_GATEWAY_URL", "http://127.0.0.1:8888")
    c = Config()
    configure(c, **base)
    assert c.JupyterHub.spawner_class == "labhub.LabSwarmSpawner"
    assert c.LabSwarmSpawner.lab_uid == 3000
    assert c.JupyterHub.shutdown_on_logout is False
    assert c.LabAuthenticator.server_addresses == ["dc1.corp:636", "dc2.corp:636"]
    assert c.LabAuthenticator.allowed_groups == ["CN=DS,OU=G,DC=corp", "CN=Ops,OU=G,DC=corp"]
    assert c.LabSwarmSpawner.gateway_url == "http://127.0.0.1:8888"
    # a keyword argument beats the environment
    c = Config()
    configure(c, **base, spawner="docker")
    assert c.JupyterHub.spawner_class == "labhub.LabDockerSpawner"


def test_https_files_checked(base, tmp_path):
    make_self_signed(tmp_path / "a.crt", tmp_path / "a.key", ["localhost"])
    make_self_signed(tmp_path / "b.crt", tmp_path / "b.key", ["localhost"])
    c = Config()
    configure(c, **base, ssl_cert=str(tmp_path / "a.crt"), ssl_key=str(tmp_path / "a.key"))
    assert c.JupyterHub.port == 8443
    with pytest.raises(LabConfigError, match="does not belong"):
        configure(
            Config(), **base, ssl_cert=str(tmp_path / "a.crt"), ssl_key=str(tmp_path / "b.key")
        )
    with pytest.raises(LabConfigError, match="does not exist"):
        configure(
            Config(), **base, ssl_cert=str(tmp_path / "nope.crt"), ssl_key=str(tmp_path / "a.key")
        )
    with pytest.raises(LabConfigError, match="both ssl_cert and ssl_key"):
        configure(Config(), **base, ssl_cert=str(tmp_path / "a.crt"))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"spawner": "kubernetes"}, "spawner must be"),
        ({"lab_uid": 0}, "positive id"),
        ({"lab_root": "relative/lab"}, "absolute path"),
        ({"uid_strategy": "sudo"}, "uid_strategy"),
        ({"auth_mode": "oauth"}, "auth_mode"),
        ({"ldap_tls": "maybe"}, "ldap_tls"),
        ({"colour": "blue"}, "unknown options"),
    ],
)
def test_bad_values_stop_with_one_sentence(base, bad, message):
    with pytest.raises(LabConfigError, match=message) as info:
        configure(Config(), **{**base, **bad})
    assert info.value.code.startswith("labhub: ") and "\n" not in info.value.code


def test_bad_environment_values(base, monkeypatch):
    monkeypatch.setenv("LABHUB_LAB_UID", "lots")
    with pytest.raises(LabConfigError, match="LABHUB_LAB_UID must be a whole number"):
        resolve_options({})
    monkeypatch.setenv("LABHUB_LAB_UID", "2100")
    monkeypatch.setenv("LABHUB_SHUTDOWN_ON_LOGOUT", "sometimes")
    with pytest.raises(LabConfigError, match="true or false"):
        resolve_options({})
