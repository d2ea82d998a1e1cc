"""The lab's name, message and logo on the hub's login page, and configure()'s OIDC options."""

from __future__ import annotations

import base64

import pytest
import requests
from traitlets.config import Config

from labhub.auth import LabAuthenticator
from labhub.hub.configure import LabConfigError, configure
from labhub.hub.options import DEFAULT_OIDC_SCOPES
from labhub.paths import hub_pages_dir
from labhub.usage.page import NOTICE_VAR, usage_notice

from ..support.browser import Browser
from ..support.hubconfig import PASSWORD, configured_config

#: a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_oidc_options_reach_the_authenticator(base):
    c = Config()
    configure(
        c,
        **base,
        auth_mode="oidc",
        oidc_issuer="https://sso.lab.test/realms/lab",
        oidc_client_id="hub",
        oidc_client_secret="s3cret",
        oidc_allowed_groups=["lab-users"],
        oidc_admin_groups=["lab-admins"],
        oidc_provider_name="Keycloak",
        public_url="https://lab.test",
    )
    a = c.LabAuthenticator
    assert a.mode == "oidc" and a.oidc_issuer == "https://sso.lab.test/realms/lab"
    assert (a.oidc_client_id, a.oidc_client_secret) == ("hub", "s3cret")
    assert (a.oidc_allowed_groups, a.oidc_admin_groups) == (["lab-users"], ["lab-admins"])
    assert a.login_service == "Keycloak"
    assert a.oidc_callback_url == "https://lab.test/hub/oauth_callback"
    assert c.JupyterHub.public_url == "https://lab.test"
    assert c.Authenticator.enable_auth_state is True
    # defaults are the traits' own, written once in labhub.hub.options
    traits = LabAuthenticator.class_traits()
    assert traits["oidc_scopes"].make_dynamic_default() == list(DEFAULT_OIDC_SCOPES)
    assert "oidc_scopes" not in a and "oidc_username_claim" not in a


def test_oidc_options_come_from_the_environment(base, monkeypatch):
    monkeypatch.setenv("LABHUB_AUTH_MODE", "oidc")
    monkeypatch.setenv("LABHUB_OIDC_SCOPES", "openid profile, email groups")
    monkeypatch.setenv("LABHUB_OIDC_ALLOWED_GROUPS", "lab-users, gpu-users")
    monkeypatch.setenv("LABHUB_OIDC_CLIENT_SECRET", "from-dot-env")
    c = Config()
    configure(c, **base)
    a = c.LabAuthenticator
    assert a.oidc_scopes == ["openid", "profile", "email", "groups"]
    assert a.oidc_allowed_groups == ["lab-users", "gpu-users"]
    assert a.oidc_client_secret == "from-dot-env"


def test_the_login_page_is_wired_in_every_mode_and_kept_by_lines_above(base, tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    c = Config()
    c.JupyterHub.template_paths = ["/srv/my-templates"]
    c.JupyterHub.template_vars = {"announcement": "kept"}
    configure(c, **base, lab_name="Genomics Lab", login_message="Welcome.", logo=str(logo))
    pages = str(hub_pages_dir())
    # an admin's own templates come first; labhub's extend JupyterHub's login.html and page.html
    assert c.JupyterHub.template_paths == ["/srv/my-templates", pages]
    assert c.JupyterHub.template_vars == {
        "announcement": "kept",
        NOTICE_VAR: usage_notice,
        "lab_name": "Genomics Lab",
        "login_message": "Welcome.",
        "lab_logo": True,
    }
    assert c.JupyterHub.logo_file == str(logo)
    once = c.copy()
    configure(c, **base, lab_name="Genomics Lab", login_message="Welcome.", logo=str(logo))
    assert c == once
    with pytest.raises(LabConfigError, match="logo /nope.png is not a file."):
        configure(Config(), **base, logo="/nope.png")


@pytest.mark.docker
@pytest.mark.security  # the lab's name is HTML-escaped
def test_the_login_page_shows_the_lab_in_dummy_mode(tmp_path, lab_image, lab_prefix, hub_factory):
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    config = configured_config(
        lab_image,
        tmp_path / "lab",
        lab_prefix,
        lab_name="Genomics <Lab>",
        login_message="Use your lab password.",
        logo=str(logo),
    )
    hub = hub_factory(config)
    page = requests.get(f"{hub.url}/hub/login", timeout=30)
    assert page.status_code == 200
    # the lab's name is escaped; the stock form is still there, under it
    assert '<h1 id="lab-name">Genomics &lt;Lab&gt;</h1>' in page.text
    assert "Use your lab password." in page.text
    assert 'id="lab-logo" src="/hub/logo"' in page.text
    assert 'id="username_input"' in page.text and "Sign in with" not in page.text
    assert requests.get(f"{hub.url}/hub/logo", timeout=30).content == PNG
    assert Browser(hub.url).login("ann", PASSWORD).status_code == 302


@pytest.mark.docker
@pytest.mark.ldap
def test_the_login_page_shows_the_lab_in_ldap_mode(
    tmp_path, lab_image, lab_prefix, hub_factory, slapd
):
    from ..support.slapd import PASSWORDS, PEOPLE

    config = configured_config(
        lab_image,
        tmp_path / "lab",
        lab_prefix,
        auth_mode="ldap",
        ldap_servers=[f"127.0.0.1:{slapd.port}"],
        ldap_tls="before_bind",
        ldap_ca_file=str(slapd.ca_file),
        ldap_bind_dn_template=[f"uid={{username}},{PEOPLE}"],
        ldap_allow_all=True,
        lab_name="Genomics Lab",
        login_message="Use your directory password.",
    )
    hub = hub_factory(config)
    page = requests.get(f"{hub.url}/hub/login", timeout=30).text
    assert '<h1 id="lab-name">Genomics Lab</h1>' in page
    assert "Use your directory password." in page and 'id="username_input"' in page
    assert "lab-logo" not in page  # no logo given
    assert Browser(hub.url).login("alice", PASSWORDS["alice"]).status_code == 302
