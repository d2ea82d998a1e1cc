"""Dummy (development) mode through a real hub: loopback only, a password always, chosen explicitly."""

from __future__ import annotations

import pytest

from ..support.browser import Browser


def refused(hub_factory, tmp_path, config: str, env: dict | None = None) -> str:
    hub = hub_factory(config, env=env, start=False)
    with pytest.raises(RuntimeError, match="hub exited"):
        hub.start()
    log = hub.log_text()
    assert "Traceback" not in log, log
    return log


def test_dummy_refuses_without_password(hub_factory, tmp_path):
    log = refused(
        hub_factory,
        tmp_path,
        'c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"\nc.LabAuthenticator.mode = "dummy"\n',
    )
    assert "Dummy mode needs a password" in log


@pytest.mark.parametrize("env", [{}, {"DEV_MODE": "1"}, {"LABHUB_AUTH_MODE": "dummy"}])
def test_dummy_refuses_a_non_loopback_bind(hub_factory, tmp_path, env):
    config = 'c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"\nc.JupyterHub.ip = "0.0.0.0"\n'
    config += 'c.LabAuthenticator.dummy_password = "dev-pw"\n'
    if not env:
        config += 'c.LabAuthenticator.mode = "dummy"\n'
    log = refused(hub_factory, tmp_path, config, env=env)
    assert "Dummy mode refuses to serve" in log and "dummy_allow_non_loopback" in log


def test_unknown_mode_from_environment_refused(hub_factory, tmp_path):
    log = refused(
        hub_factory,
        tmp_path,
        'c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"\n',
        env={"LABHUB_AUTH_MODE": "kerberos"},
    )
    assert "LABHUB_AUTH_MODE must be 'ldap', 'dummy' or 'oidc'" in log


def test_dummy_on_loopback_from_dev_mode(hub_factory):
    hub = hub_factory(
        'c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"\n',
        env={"DEV_MODE": "1", "LABHUB_DUMMY_PASSWORD": "dev-pw"},
    )
    assert "authentication mode dummy" in hub.log_text()
    assert Browser(hub.url).login("Anyone", "dev-pw").status_code == 302
    assert Browser(hub.url).login("someone-else", "dev-pw").status_code == 302
    assert Browser(hub.url).login("anyone", "wrong").status_code == 403
    assert Browser(hub.url).login("anyone", "").status_code == 403
    names = {u["name"] for u in hub.api("GET", "/users").json()}
    assert {"anyone", "someone-else"} <= names


def test_ldap_is_the_default_and_needs_a_server(hub_factory, tmp_path):
    log = refused(
        hub_factory, tmp_path, 'c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"\n'
    )
    assert "LDAP mode needs a server" in log
