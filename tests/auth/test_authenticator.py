"""LabAuthenticator picks one login class by mode and delegates to it (pure: no hub, no directory)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from ldapauthenticator.ldapauthenticator import TlsStrategy
from traitlets.config import Config, Configurable

from labhub.auth import LabAuthenticator, groups
from labhub.auth import authenticator as authenticator_module
from labhub.auth import directory_login as directory_login_module
from labhub.auth.authenticator import LOGINS
from labhub.auth.development import DevelopmentLogin, DevelopmentSettings
from labhub.auth.directory import DirectorySettings, DirectoryUnavailable
from labhub.auth.directory_login import DirectoryLogin, DirectoryLoginSettings
from labhub.auth.login import Login
from labhub.auth.oidc_login import OidcLogin
from labhub.hub import options

LOG = logging.getLogger("labhub.test.logins")


def make_auth(mode: str, **settings: Any) -> LabAuthenticator:
    c = Config()
    c.LabAuthenticator.mode = mode
    for key, value in settings.items():
        setattr(c.LabAuthenticator, key, value)
    return LabAuthenticator(config=c, log=LOG)


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]


def assert_one_sentence(message: str) -> None:
    assert message.startswith("labhub: ") and message.endswith(".")
    assert "\n" not in message and ". " not in message, message


def get_user(auth: LabAuthenticator, username: str, password: str = "pw") -> dict | None:
    data = {"username": username, "password": password}
    return asyncio.run(auth.get_authenticated_user(None, data))


# --- the registry -----------------------------------------------------------------


def test_each_mode_has_its_login_class():
    assert dict(LOGINS) == {
        options.DUMMY: DevelopmentLogin,
        options.LDAP: DirectoryLogin,
        options.OIDC: OidcLogin,
    }
    assert set(LOGINS) == set(options.AUTH_MODES)


@pytest.mark.parametrize("login_class", [DevelopmentLogin, DirectoryLogin])
def test_login_classes_have_the_interface(login_class):
    members = [m for m in Login.__dict__ if not m.startswith("_")]
    assert set(members) >= {"from_authenticator", "check_at_start", "authenticate", "check_allowed"}
    for name in members:
        assert hasattr(login_class, name), name
    assert inspect.iscoroutinefunction(login_class.authenticate)
    assert inspect.iscoroutinefunction(login_class.check_allowed)
    assert not inspect.iscoroutinefunction(login_class.check_at_start)
    assert isinstance(login_class.allow_config_applies, bool)


@pytest.mark.parametrize("mode", sorted(LOGINS))
def test_the_login_is_built_once_on_first_use(mode):
    auth = make_auth(mode, dummy_password="pw-pw-pw")
    assert auth._login is None  # nothing built before the config is complete
    login = auth.login
    assert type(login) is LOGINS[mode]
    assert auth.login is login


def test_a_mode_without_a_login_class_is_refused_in_one_sentence(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=LOG.name)
    monkeypatch.delitem(LOGINS, options.DUMMY)
    auth = make_auth(options.DUMMY, dummy_password="pw-pw-pw")
    with pytest.raises(SystemExit):
        auth.check_allow_config()
    [message] = refusals(caplog)
    assert_one_sentence(message)
    assert "'dummy'" in message and "'ldap'" in message


def test_the_mode_validation_is_unchanged(caplog):
    caplog.set_level(logging.INFO, logger=LOG.name)
    with pytest.raises(SystemExit):
        make_auth("kerberos")
    [message] = refusals(caplog)
    assert "LabAuthenticator.mode must be 'ldap', 'dummy' or 'oidc', not 'kerberos'" in message


# --- a third mode is one class and one registry entry ---------------------------------


class FakeLogin:
    """A stand-in third mode that records what LabAuthenticator asks of it."""

    allow_config_applies = True
    built = 0
    verdict_default: bool | None = None
    admin_default: bool | None = None

    def __init__(self, password: str, verdict: bool | None, admin: bool | None) -> None:
        self.password = password
        self.verdict = verdict
        self.admin = admin
        self.started_with: list[Any] = []
        self.asked: list[str] = []

    @classmethod
    def from_authenticator(cls, authenticator: Any) -> FakeLogin:
        cls.built += 1
        return cls(authenticator.dummy_password, cls.verdict_default, cls.admin_default)

    def check_at_start(self, app: Any) -> None:
        self.started_with.append(app)

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        if data["password"] != self.password:
            return None
        model: dict[str, Any] = {"name": data["username"]}
        if self.admin is not None:
            model["admin"] = self.admin
        return model

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool | None:
        self.asked.append(username)
        return self.verdict


@pytest.fixture
def fake_mode(monkeypatch):
    """Mode ``fake`` is allowed and maps to FakeLogin, for this test only."""
    monkeypatch.setattr(options, "AUTH_MODES", (*options.AUTH_MODES, "fake"))
    monkeypatch.setitem(LOGINS, "fake", FakeLogin)
    monkeypatch.setattr(FakeLogin, "built", 0)
    return FakeLogin


def test_a_third_login_class_is_used(fake_mode, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=LOG.name)
    monkeypatch.setattr(FakeLogin, "verdict_default", True)
    started: list[Any] = []
    monkeypatch.setattr(authenticator_module, "run_hub_startup", started.append)
    c = Config()
    c.LabAuthenticator.mode = "fake"
    c.LabAuthenticator.dummy_password = "fake-pw"
    app = Configurable(config=c)
    auth = LabAuthenticator(parent=app, log=LOG)
    assert auth.mode == "fake"
    auth.check_allow_config()
    assert isinstance(auth.login, FakeLogin)
    assert auth.login.started_with == [app]
    assert started == [app]  # the hub's start-up duties still run from here
    assert get_user(auth, "ada", "fake-pw")["name"] == "ada"
    assert get_user(auth, "ada", "wrong") is None
    assert auth.login.asked == ["ada"]
    assert fake_mode.built == 1


@pytest.mark.parametrize("applies", [True, False])
def test_the_base_allow_config_warning_follows_the_login(fake_mode, monkeypatch, caplog, applies):
    caplog.set_level(logging.INFO, logger=LOG.name)
    monkeypatch.setattr(FakeLogin, "allow_config_applies", applies)
    make_auth("fake").check_allow_config()
    warned = any("No allow config found" in r.getMessage() for r in caplog.records)
    assert warned is applies


@pytest.mark.parametrize(
    ("verdict", "allowed_users", "expected"),
    [
        (True, set(), {"ada", "bob"}),
        (False, {"ada", "bob"}, set()),
        # None defers to the base class rule: allowed_users here
        (None, {"ada"}, {"ada"}),
    ],
)
def test_check_allowed_decides_or_defers(fake_mode, monkeypatch, verdict, allowed_users, expected):
    monkeypatch.setattr(FakeLogin, "verdict_default", verdict)
    auth = make_auth("fake", dummy_password="pw", allowed_users=allowed_users)
    admitted = {name for name in ("ada", "bob") if get_user(auth, name)}
    assert admitted == expected


def test_a_refusal_by_the_base_rule_is_logged(fake_mode, caplog):
    caplog.set_level(logging.INFO, logger=LOG.name)
    auth = make_auth("fake", dummy_password="pw", allowed_users={"ada"})
    assert get_user(auth, "bob") is None
    assert "Login of 'bob' refused: not in allowed_users or allowed_groups" in caplog.text


def test_admin_users_stay_admins_whatever_the_login_says(fake_mode, monkeypatch):
    monkeypatch.setattr(FakeLogin, "admin_default", False)
    monkeypatch.setattr(FakeLogin, "verdict_default", True)
    auth = make_auth("fake", dummy_password="pw", admin_users={"ada"})
    assert get_user(auth, "ada")["admin"] is True
    assert get_user(auth, "bob")["admin"] is False


# --- each login reads its settings once, as plain values -------------------------------


def test_development_login_reads_its_settings_once():
    auth = make_auth(options.DUMMY, dummy_password="pw-pw-pw", manage_groups=True)
    login = auth.login
    assert login.settings == DevelopmentSettings(
        password="pw-pw-pw", allow_non_loopback=False, manage_groups=True
    )
    assert "pw-pw-pw" not in repr(login.settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        login.settings.password = "other"  # type: ignore[misc]


def test_directory_login_reads_its_settings_once(tmp_path):
    auth = make_auth(
        options.LDAP,
        server_addresses=["ldap1.test", "ldap2.test:1389"],
        bind_dn_template="uid={username},ou=people,dc=lab,dc=test",
        tls_verify=False,
        tls_ca_file=str(tmp_path / "ca.pem"),
        admin_groups=["cn=admins,dc=lab,dc=test"],
        allowed_groups=["cn=datasci,dc=lab,dc=test", "cn=admins,dc=lab,dc=test"],
        lookup_dn_search_password="search-secret",
    )
    settings = auth.login.settings
    assert isinstance(settings, DirectoryLoginSettings)
    d = settings.directory
    assert d.servers == ("ldap1.test", "ldap2.test:1389")
    assert d.bind_dn_templates == ("uid={username},ou=people,dc=lab,dc=test",)
    assert (d.tls_strategy, d.tls_verify, d.tls_ca_file) == (
        "before_bind",
        False,
        str(tmp_path / "ca.pem"),
    )
    assert d.group_dns == ("cn=datasci,dc=lab,dc=test", "cn=admins,dc=lab,dc=test")
    assert d.group_search_base == "" and settings.manage_groups is False
    assert settings.admin_groups == ("cn=admins,dc=lab,dc=test",)
    assert settings.login_timeout == auth.login_timeout and settings.workers == 8
    assert "search-secret" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.login_timeout = 1.0  # type: ignore[misc]


def test_ldap_defaults_are_written_once():
    traits = LabAuthenticator.class_traits()
    assert traits["connect_timeout"].default_value == options.DEFAULT_LDAP_CONNECT_TIMEOUT == 5.0
    assert traits["response_timeout"].default_value == options.DEFAULT_LDAP_RESPONSE_TIMEOUT == 10.0
    fields = {f.name: f.default for f in dataclasses.fields(DirectorySettings)}
    assert fields["connect_timeout"] == options.DEFAULT_LDAP_CONNECT_TIMEOUT
    assert fields["response_timeout"] == options.DEFAULT_LDAP_RESPONSE_TIMEOUT
    assert fields["tls_strategy"] == options.DEFAULT_LDAP_TLS
    assert set(options.LDAP_TLS_LABELS) == set(options.LDAP_TLS_MODES)
    assert {m.name for m in TlsStrategy} == set(options.LDAP_TLS_MODES)


# --- the development login on its own ----------------------------------------------


def development(password: str = "pw-pw-pw", **settings: Any) -> DevelopmentLogin:
    return DevelopmentLogin(DevelopmentSettings(password=password, **settings), LOG)


def test_development_login_checks_at_start(caplog):
    caplog.set_level(logging.INFO, logger=LOG.name)
    loopback = SimpleNamespace(
        bind_url="http://127.0.0.1:8000/", hub=SimpleNamespace(bind_url="http://127.0.0.1:8081/")
    )
    development().check_at_start(loopback)
    assert "authentication mode dummy (shared password, loopback only)" in caplog.text
    with pytest.raises(SystemExit):
        development(password="").check_at_start(loopback)
    with pytest.raises(SystemExit):
        development().check_at_start(SimpleNamespace(bind_url="http://0.0.0.0:8000/"))
    no_password, beyond_loopback = refusals(caplog)
    assert "Dummy mode needs a password" in no_password
    assert "Dummy mode refuses to serve http://0.0.0.0:8000/" in beyond_loopback
    assert "\n" not in no_password + beyond_loopback
    development(allow_non_loopback=True).check_at_start(
        SimpleNamespace(bind_url="http://0.0.0.0:8000/")
    )


def test_development_login_authenticates_with_the_shared_password():
    login = development()
    assert asyncio.run(login.authenticate(None, {"username": " Ada ", "password": "pw-pw-pw"})) == {
        "name": "ada"
    }
    assert asyncio.run(login.authenticate(None, {"username": "ada", "password": "nope"})) is None
    assert (
        asyncio.run(login.authenticate(None, {"username": "a\x00", "password": "pw-pw-pw"})) is None
    )
    grouped = development(manage_groups=True)
    assert asyncio.run(grouped.authenticate(None, {"username": "ada", "password": "pw-pw-pw"})) == {
        "name": "ada",
        "groups": None,
    }
    assert asyncio.run(login.check_allowed("ada", {"name": "ada"})) is True


# --- the directory login on its own ---------------------------------------------------


def directory(**settings: Any) -> DirectoryLogin:
    fields = {"servers": ("127.0.0.1",), "port": 389, "bind_dn_templates": ("uid={username}",)}
    fields.update(settings.pop("directory", {}))
    return DirectoryLogin(
        DirectoryLoginSettings(
            directory=DirectorySettings(**fields), login_timeout=1.0, workers=1, **settings
        ),
        LOG,
    )


def test_directory_login_checks_at_start(caplog):
    caplog.set_level(logging.INFO, logger=LOG.name)
    directory().check_at_start(None)
    assert (
        "authentication mode ldap (servers 127.0.0.1; StartTLS, certificate verified" in caplog.text
    )
    for broken, words in [
        ({"servers": ()}, "needs a server"),
        ({"bind_dn_templates": ()}, "needs bind_dn_template"),
        ({"lookup_dn": True}, "lookup_dn needs user_search_base"),
        ({"tls_ca_file": "/nonexistent/ca.pem"}, "does not exist"),
    ]:
        caplog.clear()
        with pytest.raises(SystemExit):
            directory(directory=broken).check_at_start(None)
        [message] = refusals(caplog)
        assert words in message
        assert_one_sentence(message)


def test_directory_login_checks_the_profiles_groups(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=LOG.name)
    spawner = SimpleNamespace(lab_profiles=[])
    monkeypatch.setattr(directory_login_module, "run_hub_startup", lambda app: spawner)
    # manage_groups without a place to read groups from: refused before the directory is asked
    with pytest.raises(SystemExit):
        directory(manage_groups=True).check_at_start(SimpleNamespace())
    [message] = refusals(caplog)
    assert "manage_groups needs LabAuthenticator.group_search_base" in message
    # no app (outside a hub) or no manage_groups: nothing to check
    directory(manage_groups=True).check_at_start(None)
    directory().check_at_start(SimpleNamespace())


def test_a_profile_group_missing_from_the_directory_stops_the_hub(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=LOG.name)
    profile = SimpleNamespace(slug="gpu", allowed_groups=["gpuusers"])
    monkeypatch.setattr(
        directory_login_module,
        "run_hub_startup",
        lambda app: SimpleNamespace(lab_profiles=[profile]),
    )
    asked: list[tuple[DirectorySettings, list[str]]] = []

    def missing(settings, names):
        asked.append((settings, names))
        return ["gpuusers"]

    monkeypatch.setattr(groups, "missing_groups", missing)
    login = directory(manage_groups=True, directory={"group_search_base": "ou=groups,dc=lab"})
    with pytest.raises(SystemExit):
        login.check_at_start(SimpleNamespace())
    assert asked == [(login.settings.directory, ["gpuusers"])]
    [message] = refusals(caplog)
    assert "Profile 'gpu' allows group 'gpuusers'" in message and "ou=groups,dc=lab" in message

    def unreachable(settings, names):
        raise DirectoryUnavailable("127.0.0.1: refused")

    monkeypatch.setattr(groups, "missing_groups", unreachable)
    login.check_at_start(SimpleNamespace())  # a directory down at start is a warning, not a stop
    assert (
        "could not check the profiles' groups in the directory: 127.0.0.1: refused" in caplog.text
    )


def test_directory_login_refuses_an_empty_password_without_asking():
    login = directory(directory={"servers": ("192.0.2.1",)})
    assert asyncio.run(login.authenticate(None, {"username": "ada", "password": "  "})) is None
    assert login._executor is None  # the directory was never asked


def test_directory_login_lets_admins_in_and_defers_the_rest():
    login = directory()
    assert asyncio.run(login.check_allowed("ada", {"name": "ada", "admin": True})) is True
    assert asyncio.run(login.check_allowed("bob", {"name": "bob", "admin": False})) is None
    assert asyncio.run(login.check_allowed("bob", None)) is None
