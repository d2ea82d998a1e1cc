"""labhub.hub.options: the one table of settings, and the one authentication-mode rule."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from labhub.hub import options
from labhub.hub.options import (
    AUTH_MODES,
    BY_NAME,
    DUMMY,
    LDAP,
    OIDC,
    OPTIONS,
    OptionError,
    auth_mode,
    parse_env,
    resolve,
    spawner_kind,
)


def test_every_option_is_documented_and_named_once():
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names))
    for option in OPTIONS:
        assert option.help and option.help[-1] != ".", option.name
        assert option.env == "LABHUB_" + option.name.upper()
        assert option.sets, f"{option.name} names no config trait"
        assert all("." in trait for trait in option.sets), option.name
        if option.choices:
            assert option.default in (*option.choices, ""), option.name


def test_trait_defaults_come_from_the_table():
    """The traits and configure() share one default: change it in options.py and both follow."""
    from labhub.auth import LabAuthenticator
    from labhub.spawner.docker import LabDockerSpawner

    traits = LabDockerSpawner.class_traits()
    assert traits["lab_root"].default_value == BY_NAME["lab_root"].default
    assert traits["lab_uid"].default_value == BY_NAME["lab_uid"].default
    assert traits["lab_gid"].default_value == BY_NAME["lab_gid"].default
    assert traits["uid_strategy"].default_value == BY_NAME["uid_strategy"].default
    assert tuple(traits["uid_strategy"].values) == BY_NAME["uid_strategy"].choices
    for name in ("gateway_request_timeout", "gateway_connect_timeout", "gateway_validate_cert"):
        assert traits[name].default_value == BY_NAME[name].default, name
    tls = LabAuthenticator.class_traits()["tls_strategy"]
    assert {m.name for m in tls.enum_class} == set(options.LDAP_TLS_MODES)


@pytest.mark.parametrize(
    ("configured", "environ", "expected"),
    [
        (None, {}, LDAP),
        (None, {"DEV_MODE": "1"}, DUMMY),
        (None, {"DEV_MODE": "true"}, DUMMY),
        (None, {"DEV_MODE": " Yes "}, DUMMY),
        (None, {"DEV_MODE": "on"}, DUMMY),
        (None, {"DEV_MODE": "0"}, LDAP),
        (None, {"DEV_MODE": "false"}, LDAP),
        (None, {"DEV_MODE": ""}, LDAP),
        (None, {"LABHUB_AUTH_MODE": "dummy"}, DUMMY),
        (None, {"LABHUB_AUTH_MODE": " LDAP "}, LDAP),
        (None, {"LABHUB_AUTH_MODE": "", "DEV_MODE": "1"}, DUMMY),
        # LABHUB_AUTH_MODE is more specific than DEV_MODE
        (None, {"LABHUB_AUTH_MODE": "ldap", "DEV_MODE": "1"}, LDAP),
        # a configured mode beats the environment
        ("ldap", {"DEV_MODE": "true"}, LDAP),
        ("dummy", {"LABHUB_AUTH_MODE": "ldap"}, DUMMY),
        ("", {"DEV_MODE": "true"}, DUMMY),
    ],
)
def test_auth_mode(configured, environ, expected):
    assert auth_mode(configured, environ) == expected


@pytest.mark.parametrize(
    ("configured", "environ", "message"),
    [
        (
            "kerberos",
            {},
            "LabAuthenticator.mode must be 'ldap', 'dummy' or 'oidc', not 'kerberos'.",
        ),
        (None, {"LABHUB_AUTH_MODE": "oauth"}, "LABHUB_AUTH_MODE must be 'ldap', 'dummy' or 'oidc'"),
    ],
)
def test_unknown_auth_mode_names_its_source(configured, environ, message):
    with pytest.raises(OptionError, match=message) as info:
        auth_mode(configured, environ)
    assert "\n" not in str(info.value)


def test_auth_modes_are_the_options_choices():
    assert BY_NAME["auth_mode"].choices == AUTH_MODES == (LDAP, DUMMY, OIDC)


def test_resolve_keywords_beat_environment_beat_defaults():
    values, explicit = resolve(
        {"lab_uid": 3000, "image": None},
        {"LABHUB_LAB_UID": "4000", "LABHUB_NETWORK": "bridge", "LABHUB_IMAGE": "lab:1"},
    )
    assert values["lab_uid"] == 3000
    assert values["network"] == "bridge"
    assert values["image"] == "lab:1"  # a keyword of None counts as not given
    assert values["lab_root"] == options.DEFAULT_LAB_ROOT
    assert explicit == {"lab_uid", "network", "image"}


def test_parse_env():
    assert parse_env(BY_NAME["shutdown_on_logout"], "Off") is False
    assert parse_env(BY_NAME["ldap_servers"], "a:636, b:636") == ["a:636", "b:636"]
    assert parse_env(BY_NAME["ldap_allowed_groups"], "CN=a,DC=x;CN=b,DC=x") == [
        "CN=a,DC=x",
        "CN=b,DC=x",
    ]
    assert parse_env(BY_NAME["auth_mode"], " Dummy ") == "dummy"
    assert parse_env(BY_NAME["cpu_limit"], "1.5") == 1.5
    with pytest.raises(OptionError, match="LABHUB_PORT must be a whole number, not 'http'"):
        parse_env(BY_NAME["port"], "http")
    with pytest.raises(OptionError, match="LABHUB_SHUTDOWN_ON_LOGOUT must be true or false"):
        parse_env(BY_NAME["shutdown_on_logout"], "maybe")


@pytest.mark.parametrize(
    ("given", "source"),
    [
        ({"ldap_tls": "starttls"}, "ldap_tls must be before_bind, on_connect or insecure"),
        ({"uid_strategy": "sudo"}, "uid_strategy must be direct or docker-stacks"),
        ({"spawner": "k8s"}, "spawner must be docker or swarm"),
    ],
)
def test_allowed_values_checked(given, source):
    with pytest.raises(OptionError, match=source):
        resolve(given, {})


def test_allowed_values_from_the_environment_name_the_variable():
    with pytest.raises(OptionError, match="LABHUB_UID_STRATEGY must be direct or docker-stacks"):
        resolve({}, {"LABHUB_UID_STRATEGY": "sudo"})


def test_unknown_option_names_the_table_and_close_matches():
    with pytest.raises(OptionError) as info:
        resolve({"lab_rot": "/srv/lab", "colour": "blue"}, {})
    message = str(info.value)
    assert "labhub.hub.options.OPTIONS" in message
    assert "'lab_rot' (did you mean 'lab_root'" in message
    assert "'colour', " in message  # nothing close to suggest
    assert "\n" not in message and message.endswith(".")


@pytest.mark.parametrize(
    ("spawner_class", "kind"),
    [
        ("labhub.LabDockerSpawner", "docker"),
        ("labhub.spawner.docker.LabDockerSpawner", "docker"),
        ("lab-swarm", "swarm"),
        ("labhub.LabSwarmSpawner", "swarm"),
        ("dockerspawner.DockerSpawner", None),
        (None, None),
    ],
)
def test_spawner_kind(spawner_class, kind):
    assert spawner_kind(spawner_class) == kind


def test_spawner_kind_of_a_class():
    from labhub.spawner.swarm import LabSwarmSpawner

    assert spawner_kind(LabSwarmSpawner) == "swarm"


# --- DEV_MODE=true: the same answer everywhere ---------------------------------------


@pytest.fixture
def dev_mode(monkeypatch, tmp_path):
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    monkeypatch.setenv("DEV_MODE", "true")
    return tmp_path


def test_dev_mode_true_is_dummy_in_authenticator_configure_check_and_run(dev_mode):
    from labhub.auth import LabAuthenticator
    from labhub.cli import checks
    from labhub.cli import main as cli
    from labhub.hub.configure import configure

    # the hub's authenticator, with no mode configured
    assert LabAuthenticator(config=Config()).mode == DUMMY
    # configure() writes the same decision into the config it builds
    c = Config()
    resolved = configure(c, data_dir=str(dev_mode / "data"), lab_root=str(dev_mode / "lab"))
    assert resolved["auth_mode"] == DUMMY
    assert c.LabAuthenticator.mode == DUMMY
    assert LabAuthenticator(config=c).mode == DUMMY
    # labhub check: on a config with no mode, and on configure()'s
    assert checks.config_auth_mode(Config()) == DUMMY
    assert checks.config_auth_mode(c) == DUMMY
    assert checks.check_ldap(Config()).startswith(checks.SKIP)
    # labhub run: the config it writes
    password = dev_mode / "password"
    password.write_text("pw\n")
    config = dev_mode / "run_config.py"
    config.write_text(cli.run_config(dev_mode, "lab:1", "127.0.0.1", 8443, "", "", str(password)))
    assert checks.config_auth_mode(checks.load_config(str(config))) == DUMMY


def test_dev_mode_off_is_ldap_everywhere(dev_mode, monkeypatch):
    from labhub.auth import LabAuthenticator
    from labhub.cli import checks
    from labhub.hub.configure import configure

    monkeypatch.setenv("DEV_MODE", "false")
    c = Config()
    configure(c, data_dir=str(dev_mode / "data"), lab_root=str(dev_mode / "lab"))
    assert LabAuthenticator(config=Config()).mode == LDAP
    assert c.LabAuthenticator.mode == LDAP
    assert checks.config_auth_mode(Config()) == LDAP
    with pytest.raises(checks.CheckFailed, match="no server_address"):
        checks.check_ldap(Config())
