"""OIDC mode through a real hub, configure() and a real OpenID provider (oidc-provider on loopback)."""

from __future__ import annotations

import secrets
import time

import pytest

from tests.conftest import unavailable
from tests.support.browser import Browser
from tests.support.hub import HubProcess
from tests.support.hubconfig import configured_config
from tests.support.oidc import OidcProvider, hub_lines, node

LAB_NAME = "Cancer Research Lab"
LOGIN_MESSAGE = "Sign in with your institute account."
PROVIDER = "Lab SSO"


@pytest.fixture(scope="module")
def node_runtime():
    if node() is None:
        unavailable("node is not installed (apt-get install nodejs npm)")


def start_sso_hub(
    workdir, image, prefix, *, provider: OidcProvider, start_provider: bool = True, **options
) -> HubProcess:
    """A hub wired by configure() for OIDC mode against ``provider``; the provider is started too."""
    config = configured_config(
        image,
        workdir / "lab",
        prefix,
        **hub_lines(provider, lab_name=LAB_NAME, login_message=LOGIN_MESSAGE, **options),
    )
    hub = HubProcess(workdir / "hub", config, env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)})
    # the callback needs the hub's own address, chosen when the hub object was made
    hub.add_config(
        f"""
        c.JupyterHub.public_url = {hub.url!r}
        c.LabAuthenticator.oidc_callback_url = "{hub.url}/hub/oauth_callback"
        """
    )
    provider.redirect_uri = f"{hub.url}/hub/oauth_callback"
    if start_provider:
        provider.start()
    return hub.start()


@pytest.fixture(scope="module")
def sso(node_runtime, tmp_path_factory, lab_image, docker_client):
    """One provider and one hub for the login and refusal tests of this module."""
    root = tmp_path_factory.mktemp("sso")
    provider = OidcProvider(root / "provider")
    prefix = "labo" + secrets.token_hex(3)
    hub = start_sso_hub(
        root,
        lab_image,
        prefix,
        provider=provider,
        oidc_allowed_groups=["lab-users"],
        oidc_admin_groups=["lab-admins"],
        oidc_provider_name=PROVIDER,
    )
    yield hub, provider
    hub.stop()
    hub.reap()
    provider.stop()


def test_a_member_logs_in_through_the_provider_with_groups_bound_to_sub(sso):
    hub, _ = sso
    browser = Browser(hub.url)
    t0 = time.monotonic()
    answer = browser.sso_login("alice")
    seconds = time.monotonic() - t0
    assert answer.status_code == 302, answer.text[:500]
    assert browser.user == "alice"
    model = hub.api("GET", "/users/alice").json()
    assert model["groups"] == ["lab-users"]
    assert model["admin"] is False
    state = hub.api("GET", "/users/alice", params={"include_auth_state": 1}).json()
    print(f"\nlogin round trip through the provider: {seconds * 1000:.0f} ms")
    assert state["auth_state"]["oidc_sub"] == "alice", state
