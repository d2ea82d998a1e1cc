"""labhub.configure(): fills in and never clobbers, idempotent, environment-driven, strict about bad values."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest
from jupyterhub.utils import random_port
from traitlets.config import Config

from labhub.cli.certs import make_self_signed
from labhub.hub.configure import OPTIONS, LabConfigError, configure, resolve_options
from labhub.hub.options import DEFAULT_NETWORKS, SPAWNER_SECTION, SPAWNERS


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
    # the hub listens on the labs' own network's gateway, never on 0.0.0.0
    assert c.JupyterHub.hub_ip == c.JupyterHub.hub_connect_ip == "10.213.0.1"
    assert c.LabDockerSpawner.network_name == "labhub-labs"
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


# --- configure() fills in, never clobbers ------------------------------------------


def test_lines_before_the_call_stay(base):
    c = Config()
    c.JupyterHub.port = 9000
    c.JupyterHub.ip = "0.0.0.0"
    c.JupyterHub.hub_ip = "10.0.0.2"
    c.LabDockerSpawner.mem_limit = "512M"
    c.LabDockerSpawner.environment = {"TEAM": "x"}
    c.LabDockerSpawner.image = "team/lab:3"
    c.Spawner.start_timeout = 60
    c.JupyterHub.cleanup_servers = True
    configure(c, **base, gateway_url="http://127.0.0.1:8888")
    assert c.JupyterHub.port == 9000
    assert c.JupyterHub.ip == "0.0.0.0"
    assert c.JupyterHub.hub_ip == "10.0.0.2"
    assert c.LabDockerSpawner.mem_limit == "512M"
    assert c.LabDockerSpawner.environment == {"TEAM": "x"}
    assert c.LabDockerSpawner.image == "team/lab:3"
    assert c.Spawner.start_timeout == 60
    assert c.JupyterHub.cleanup_servers is True
    # what the admin did not set is filled in, and what they passed is written
    assert c.Spawner.http_timeout == 300
    assert c.LabDockerSpawner.gateway_url == "http://127.0.0.1:8888"
    assert c.LabDockerSpawner.lab_root == base["lab_root"]


def test_a_parent_section_counts_as_set(base):
    """``c.Spawner.mem_limit`` or ``c.DockerSpawner.image`` reach LabDockerSpawner too."""
    c = Config()
    c.DockerSpawner.image = "team/lab:3"
    configure(c, **base)
    assert "image" not in c.LabDockerSpawner
    assert c.DockerSpawner.image == "team/lab:3"


def test_keywords_and_environment_beat_lines_before(base, monkeypatch):
    c = Config()
    c.JupyterHub.port = 9000
    c.LabDockerSpawner.mem_limit = "512M"
    configure(c, **base, port=9100, mem_limit="2G")
    assert c.JupyterHub.port == 9100
    assert c.LabDockerSpawner.mem_limit == "2G"
    monkeypatch.setenv("LABHUB_PORT", "9200")
    c = Config()
    c.JupyterHub.port = 9000
    configure(c, **base)
    assert c.JupyterHub.port == 9200
    # and a keyword beats the environment
    configure(c, **base, port=9300)
    assert c.JupyterHub.port == 9300


def test_lines_between_two_calls_stay(base):
    c = Config()
    configure(c, **base)
    assert c.JupyterHub.port == 8000
    c.JupyterHub.port = 9000
    c.LabDockerSpawner.uid_strategy = "docker-stacks"
    configure(c, **base)
    assert c.JupyterHub.port == 9000
    assert c.LabDockerSpawner.uid_strategy == "docker-stacks"


@pytest.mark.parametrize(
    "before",
    [
        {},
        {("JupyterHub", "port"): 9000, ("LabDockerSpawner", "mem_limit"): "512M"},
        {("JupyterHub", "services"): [{"name": "grafana", "url": "http://127.0.0.1:3000"}]},
        {("LabAuthenticator", "mode"): "dummy", ("JupyterHub", "spawner_class"): "lab-swarm"},
    ],
)
def test_twice_is_once_whatever_came_before(base, before):
    once, twice = Config(), Config()
    for c in (once, twice):
        for (section, name), value in before.items():
            c[section][name] = value
    configure(once, **base, idle_timeout=600)
    configure(twice, **base, idle_timeout=600)
    configure(twice, **base, idle_timeout=600)
    assert once == twice
    for (section, name), value in before.items():
        if name != "services":
            assert twice[section][name] == value


def test_derived_values_fill_in(base, tmp_path):
    make_self_signed(tmp_path / "a.crt", tmp_path / "a.key", ["localhost"])
    # HTTPS set above the call (not through configure) still gets the HTTPS port
    c = Config()
    c.JupyterHub.ssl_cert = str(tmp_path / "a.crt")
    c.JupyterHub.ssl_key = str(tmp_path / "a.key")
    configure(c, **base)
    assert c.JupyterHub.port == 8443
    # a port set above the call stays with HTTPS turned on by configure()
    c = Config()
    c.JupyterHub.port = 9443
    configure(c, **base, ssl_cert=str(tmp_path / "a.crt"), ssl_key=str(tmp_path / "a.key"))
    assert c.JupyterHub.port == 9443
    # hub_ip follows an explicit network; an earlier hub_connect_ip stays when the network is a default
    c = Config()
    configure(c, **base, network="bridge")
    assert (c.JupyterHub.hub_ip, c.JupyterHub.hub_connect_ip) == ("172.17.0.1", "172.17.0.1")
    c = Config()
    c.JupyterHub.hub_ip = "10.0.0.2"
    configure(c, **base)
    assert c.JupyterHub.hub_ip == "10.0.0.2"


def test_hub_state_paths_set_above_are_kept_and_no_data_dir_is_made(tmp_path, monkeypatch):
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    c = Config()
    c.JupyterHub.cookie_secret_file = str(tmp_path / "secret")
    c.JupyterHub.db_url = "sqlite:///" + str(tmp_path / "hub.sqlite")
    c.ConfigurableHTTPProxy.pid_file = str(tmp_path / "proxy.pid")
    before = dict(c.JupyterHub)
    configure(c, lab_root=str(tmp_path / "lab"))
    assert c.JupyterHub.cookie_secret_file == before["cookie_secret_file"]
    assert c.JupyterHub.db_url == before["db_url"]
    # the default data_dir (/srv/jupyterhub) was not needed, so not created
    configure(c, lab_root=str(tmp_path / "lab"), data_dir=str(tmp_path / "state"))
    assert (tmp_path / "state").is_dir()
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'state' / 'jupyterhub.sqlite'}"


def test_spawner_chosen_above_the_call_gets_the_lab_settings(base):
    c = Config()
    c.JupyterHub.spawner_class = "lab-swarm"
    configure(c, **base, lab_uid=3000)
    assert c.JupyterHub.spawner_class == "lab-swarm"
    assert c.LabSwarmSpawner.lab_uid == 3000
    assert "LabDockerSpawner" not in c


def test_idle_culler(base):
    c = Config()
    own = {"name": "idle-culler", "command": ["my-culler"]}
    c.JupyterHub.services = [own]
    configure(c, **base)
    assert c.JupyterHub.services == [own]  # the admin's own culler stays
    configure(c, **base, idle_timeout=900)
    assert "--timeout=900" in c.JupyterHub.services[0]["command"]
    configure(c, **base, idle_timeout=0)
    assert c.JupyterHub.services == []
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["user"]  # sharing's, not the culler


def test_services_appended_above_the_call(base):
    c = Config()
    c.JupyterHub.services.append({"name": "grafana", "url": "http://127.0.0.1:3000"})
    configure(c, **base)
    assert [s["name"] for s in c.JupyterHub.services] == ["grafana", "idle-culler"]


def test_auth_mode_set_above_the_call_stays_and_is_checked(base, monkeypatch):
    monkeypatch.setenv("DEV_MODE", "1")
    c = Config()
    c.LabAuthenticator.mode = "ldap"
    assert configure(c, **base)["auth_mode"] == "ldap"
    assert c.LabAuthenticator.mode == "ldap"
    c = Config()
    c.LabAuthenticator.mode = "kerberos"
    with pytest.raises(LabConfigError, match="LabAuthenticator.mode must be"):
        configure(c, **base)


def test_unknown_option_points_at_the_table(base):
    with pytest.raises(LabConfigError) as info:
        configure(Config(), **base, lab_rot="/srv/lab")
    message = info.value.code
    assert "labhub.hub.options.OPTIONS" in message and "did you mean 'lab_root'" in message
    assert "\n" not in message


@pytest.mark.docker
def test_real_hub_keeps_lines_written_before_configure(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    """A hub whose config sets port, memory limit and environment above configure() keeps all three."""
    port = random_port()
    config = f"""
    import labhub

    c.JupyterHub.port = {port}
    c.LabDockerSpawner.mem_limit = "512M"
    c.LabDockerSpawner.environment = {{"TEAM": "x"}}
    c.LabDockerSpawner.prefix = {lab_prefix!r}
    c.LabDockerSpawner.pull_policy = "never"
    labhub.configure(
        c,
        lab_root={str(lab_root)!r},
        image={lab_image!r},
        auth_mode="dummy",
        dummy_password="lab-dev-password",
    )
    """
    hub = hub_factory(textwrap.dedent(config), start=False)
    hub.port = port  # the port the config asks for; start() waits for the hub's API there
    hub.start()
    assert f"127.0.0.1:{port}" in hub.log_text()
    hub.spawn("alice")
    containers = docker_client.containers.list(filters={"name": f"{lab_prefix}-alice"})
    assert len(containers) == 1
    attrs = containers[0].attrs
    assert attrs["HostConfig"]["Memory"] == 512 * 1024 * 1024
    assert "TEAM=x" in attrs["Config"]["Env"]
    hub.stop_server("alice")


# --- the defaults configure() writes are the spawners' own ------------------------------


@pytest.mark.parametrize("kind", SPAWNERS)
def test_each_default_written_is_the_trait_default_of_the_chosen_spawner(base, kind):
    """One source for each default: configure() on its defaults writes what the trait says.

    ``image`` included: both are labhub's offline image, never dockerspawner's
    registry default.
    """
    from labhub.cli.image import DEFAULT_IMAGE
    from labhub.spawner.docker import LabDockerSpawner
    from labhub.spawner.swarm import LabSwarmSpawner

    cls = {"docker": LabDockerSpawner, "swarm": LabSwarmSpawner}[kind]
    fresh = cls(user=SimpleNamespace(name="defaults"))
    c = Config()
    configure(c, data_dir=base["data_dir"], spawner=kind)
    section = c[cls.__name__]
    checked = []
    for option in OPTIONS:
        for target in option.sets:
            if not target.startswith(SPAWNER_SECTION + "."):
                continue
            trait = target.split(".", 1)[1]
            default = getattr(fresh, trait)
            if trait == "image":
                assert section[trait] == default == DEFAULT_IMAGE
            elif trait in section:
                assert section[trait] == default, (option.name, trait)
            elif option.default not in ("", 0, [], None):
                # not written: the trait's default applies, and it must be the option's
                assert option.default == default, (option.name, trait)
            checked.append(trait)
    assert {"lab_root", "network_name", "lab_uid", "uid_strategy"} <= set(checked)
    assert section.network_name == DEFAULT_NETWORKS[kind] == fresh.network_name


def test_swarm_labs_go_on_the_host_network_and_the_hub_on_loopback(base):
    """configure(spawner="swarm") used to write labhub-labs, a bridge no Swarm service can join."""
    c = Config()
    configure(c, **base, spawner="swarm")
    assert c.LabSwarmSpawner.network_name == "host"
    assert c.JupyterHub.hub_ip == "127.0.0.1"
    assert "network_subnet" not in c.LabSwarmSpawner
    # an explicit network still wins, on either spawner
    c = Config()
    configure(c, **base, spawner="swarm", network="lab-overlay")
    assert c.LabSwarmSpawner.network_name == "lab-overlay"
    c = Config()
    configure(c, **base, spawner="docker")
    assert c.LabDockerSpawner.network_name == "labhub-labs"


@pytest.mark.security
@pytest.mark.parametrize("how", [{"network": "host"}, {"spawner": "swarm"}])
def test_labs_on_host_networking_get_hub_ports_no_lab_can_bind(base, tmp_path, how):
    """Labs sharing the hub's loopback must not be able to take its ports while it restarts."""
    c = Config()
    configure(c, **base, **how)
    assert c.JupyterHub.hub_port == 881
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:801"
    assert c.JupyterHub.port == 80
    make_self_signed(tmp_path / "a.crt", tmp_path / "a.key", ["localhost"])
    c = Config()
    configure(c, **base, **how, ssl_cert=str(tmp_path / "a.crt"), ssl_key=str(tmp_path / "a.key"))
    assert c.JupyterHub.port == 443
    # ports written above the call stay (the hub then refuses ones a lab could bind)
    c = Config()
    c.JupyterHub.hub_port = 8081
    configure(c, **base, **how, port=8443)
    assert (c.JupyterHub.hub_port, c.JupyterHub.port) == (8081, 8443)


def test_labs_on_their_own_network_keep_the_usual_ports(base):
    c = Config()
    configure(c, **base)
    assert c.JupyterHub.port == 8000
    assert "hub_port" not in c.JupyterHub
    assert "api_url" not in c.ConfigurableHTTPProxy
