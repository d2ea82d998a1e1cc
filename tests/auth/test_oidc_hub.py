"""OIDC mode through a real hub, configure() and a real OpenID provider (oidc-provider on loopback)."""

from __future__ import annotations

import html
import secrets
import statistics
import time

import pytest
import requests

from tests.conftest import unavailable
from tests.support.browser import Browser
from tests.support.hub import HubProcess
from tests.support.hubconfig import configured_config
from tests.support.oidc import OidcProvider, hub_lines, node

# every hub here is wired by configure() with the lab image, on a real engine
pytestmark = pytest.mark.docker

LAB_NAME = "Cancer Research Lab"
LOGIN_MESSAGE = "Sign in with your institute account."
PROVIDER = "Lab SSO"


@pytest.fixture(scope="module")
def node_runtime():
    if node() is None:
        unavailable("node is not installed (apt-get install nodejs npm)")


def start_sso_hub(
    workdir,
    image,
    prefix,
    *,
    provider: OidcProvider,
    start_provider: bool = True,
    after: str = "",
    **options,
) -> HubProcess:
    """A hub wired by configure() for OIDC mode against ``provider``; the provider is started too."""
    config = configured_config(
        image,
        workdir / "lab",
        prefix,
        after=after,
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
    rounds = []
    for _ in range(5):  # a fresh browser each time: the provider's login form and consent
        browser = Browser(hub.url)
        t0 = time.monotonic()
        answer = browser.sso_login("alice")
        rounds.append(time.monotonic() - t0)
        assert answer.status_code == 302, answer.text[:500]
        assert browser.user == "alice"
    model = hub.api("GET", "/users/alice").json()
    assert model["groups"] == ["lab-users"]
    assert model["admin"] is False
    state = hub.api("GET", "/users/alice", params={"include_auth_state": 1}).json()
    print(
        f"\nlogin round trip through the provider (hub -> form -> consent -> callback): "
        f"median {statistics.median(rounds) * 1000:.0f} ms, "
        f"min {min(rounds) * 1000:.0f}, max {max(rounds) * 1000:.0f} ms of 5"
    )
    assert state["auth_state"]["oidc_sub"] == "alice", state


def test_the_login_page_shows_the_lab_and_the_provider_button(sso):
    hub, _ = sso
    page = requests.get(f"{hub.url}/hub/login", timeout=30)
    assert page.status_code == 200
    assert LAB_NAME in page.text and LOGIN_MESSAGE in page.text
    assert f"Sign in with {PROVIDER}" in page.text
    assert "href='/hub/oauth_login" in page.text
    assert "provider-problem" not in page.text


def test_an_admin_group_member_is_an_admin_with_a_normalised_username(sso):
    hub, _ = sso
    browser = Browser(hub.url)
    answer = browser.sso_login("root-admin")  # preferred_username "Boss@LAB.TEST"
    assert answer.status_code == 302, answer.text[:500]
    assert browser.user == "boss"
    model = hub.api("GET", "/users/boss").json()
    assert model["admin"] is True and model["groups"] == ["lab-admins"]


def refusal(answer: requests.Response) -> str:
    """The one sentence of the hub's error page."""
    assert 400 <= answer.status_code < 600, answer.status_code
    return " ".join(html.unescape(answer.text).split())


@pytest.mark.security
def test_an_outsider_is_refused_in_one_sentence(sso):
    hub, _ = sso
    answer = Browser(hub.url).sso_login("outsider")
    assert answer.status_code == 403
    assert "eve is not in a group allowed to use this lab; ask an administrator." in refusal(answer)
    assert hub.api("GET", "/users/eve").status_code == 404


@pytest.mark.security
def test_another_account_claiming_an_existing_username_is_refused(sso):
    hub, _ = sso
    alice = Browser(hub.url)
    assert alice.sso_login("alice").status_code == 302
    answer = Browser(hub.url).sso_login("mallory")  # preferred_username "alice", sub "mallory"
    assert answer.status_code == 403
    assert (
        f"The hub user 'alice' belongs to another {PROVIDER} account; ask an administrator "
        "if your account was renamed." in refusal(answer)
    )
    # alice is untouched: still bound to her own account, still logged in
    state = hub.api("GET", "/users/alice", params={"include_auth_state": 1}).json()
    assert state["auth_state"]["oidc_sub"] == "alice"
    assert alice.hub_user() == "alice"


@pytest.mark.security
@pytest.mark.parametrize(
    ("account", "claim"), [("nameless", "preferred_username"), ("groupless", "groups")]
)
def test_a_missing_claim_is_named(sso, account, claim):
    hub, _ = sso
    answer = Browser(hub.url).sso_login(account)
    assert answer.status_code == 403
    assert f"The provider sent no '{claim}' claim;" in refusal(answer)


@pytest.mark.security
def test_a_forged_state_and_a_replayed_callback_are_refused(sso):
    hub, _ = sso
    # forged: a callback this browser never started
    browser = Browser(hub.url)
    browser.session.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    forged = browser.session.get(
        f"{hub.url}/hub/oauth_callback",
        params={"code": "stolen", "state": "eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ"},
        timeout=30,
    )
    assert forged.status_code == 400
    sentence = "This sign-in answer does not belong to a sign-in started in this browser"
    assert sentence in refusal(forged)
    # replayed: a good callback, then the same code again, with and without the state cookie
    from tests.support.oidc import follow, walk_provider

    victim = Browser(hub.url)
    r = follow(
        victim.session,
        victim.session.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30),
    )
    state_cookie = victim.session.cookies.get("oauthenticator-state")
    answer = walk_provider(victim.session, r, "gpu-carol")
    assert answer.status_code == 302, answer.text[:300]
    callback = answer.url
    again = victim.session.get(callback, allow_redirects=False, timeout=30)
    assert again.status_code == 400 and sentence in refusal(again)
    thief = requests.Session()
    thief.cookies.set("oauthenticator-state", state_cookie, domain="127.0.0.1", path="/hub/")
    replayed = thief.get(callback, allow_redirects=False, timeout=30)
    assert replayed.status_code == 403
    assert "This sign-in code was used already or has expired; sign in again." in refusal(replayed)
    assert "jupyterhub-session-id" not in thief.cookies


@pytest.mark.security
def test_a_wrong_client_secret_is_one_sentence_and_never_logged(node_runtime, tmp_path, lab_image):
    provider = OidcProvider(tmp_path / "provider")
    wrong = "wrong-" + secrets.token_hex(8)
    hub = start_sso_hub(
        tmp_path,
        lab_image,
        "labo" + secrets.token_hex(3),
        provider=provider,
        oidc_client_secret=wrong,
    )
    try:
        answer = Browser(hub.url).sso_login("alice")
        assert answer.status_code == 500
        assert (
            "single sign-on refused this hub's client id or secret; an administrator must check "
            "oidc_client_id and oidc_client_secret." in refusal(answer)
        )
        assert hub.api("GET", "/users/alice").status_code == 404
        log = hub.log_text()
        assert wrong not in log and provider.client_secret not in log
    finally:
        hub.stop()
        hub.reap()
        provider.stop()


@pytest.mark.security
def test_an_unverified_email_is_never_a_username(node_runtime, tmp_path, lab_image):
    provider = OidcProvider(tmp_path / "provider")
    hub = start_sso_hub(
        tmp_path,
        lab_image,
        "labo" + secrets.token_hex(3),
        provider=provider,
        oidc_username_claim="email",
        oidc_allowed_groups=["lab-users"],
    )
    try:
        answer = Browser(hub.url).sso_login("unverified")  # dave@lab.test, email_verified false
        assert answer.status_code == 403
        assert (
            "The provider has not verified this email address, so it cannot be a username."
            in refusal(answer)
        )
        assert hub.api("GET", "/users/dave").status_code == 404
        # a verified address is the username, normalised like an LDAP login (user part, lower case)
        alice = Browser(hub.url)
        assert alice.sso_login("alice").status_code == 302
        assert alice.user == "alice"
    finally:
        hub.stop()
        hub.reap()
        provider.stop()


PROFILES = [
    {"display_name": "Standard", "slug": "standard", "default": True},
    {
        "display_name": "Big data (GPU team)",
        "slug": "bigdata",
        "allowed_groups": ["gpu-users"],
        "spawner_override": {"environment": {"LAB_PROFILE": "bigdata"}},
    },
]


@pytest.mark.reliability
def test_a_lab_through_sso_while_the_provider_goes_down_and_comes_back(
    node_runtime, tmp_path, lab_image, lab_prefix, docker_client
):
    provider = OidcProvider(tmp_path / "provider")
    hub = start_sso_hub(
        tmp_path,
        lab_image,
        lab_prefix,
        provider=provider,
        start_provider=False,  # the issuer is down while the hub starts
        oidc_allowed_groups=["lab-users"],
        after=f"c.LabDockerSpawner.profile_list = {PROFILES!r}",
    )
    try:
        page = requests.get(f"{hub.url}/hub/login", timeout=30)
        assert page.status_code == 200
        assert "single sign-on cannot be reached just now; try again in a minute." in page.text
        assert LAB_NAME in page.text

        provider.start()  # it comes back: no hub restart
        assert "cannot be reached" not in requests.get(f"{hub.url}/hub/login", timeout=30).text
        carol, alice = Browser(hub.url), Browser(hub.url)
        assert carol.sso_login("gpu-carol").status_code == 302
        assert alice.sso_login("alice").status_code == 302
        assert set(hub.api("GET", "/users/carol").json()["groups"]) == {"gpu-users", "lab-users"}

        # the profile kept for a provider group: refused to alice with a 4xx, before any container
        xsrf = {"X-XSRFToken": alice.session.cookies.get("_xsrf", path="/hub/") or ""}
        forged = alice.session.post(
            f"{hub.url}/hub/api/users/alice/server",
            json={"profile": "bigdata"},
            headers=xsrf,
            timeout=60,
        )
        assert forged.status_code == 403, forged.text
        assert "You may not start profile 'bigdata'" in forged.json()["message"]
        assert not docker_client.containers.list(all=True, filters={"name": f"{lab_prefix}-alice"})

        # carol's lab, with that profile and her folders
        xsrf = {"X-XSRFToken": carol.session.cookies.get("_xsrf", path="/hub/") or ""}
        r = carol.session.post(
            f"{hub.url}/hub/api/users/carol/server",
            json={"profile": "bigdata"},
            headers=xsrf,
            timeout=120,
        )
        assert r.status_code in (201, 202), r.text
        hub.wait_ready("carol")
        assert carol.session.get(f"{hub.url}/user/carol/lab", timeout=60).status_code == 200
        assert carol.put_text("work/hello.txt", "from sso").status_code in (200, 201)
        on_host = tmp_path / "lab" / "personal_notebooks" / "carol" / "hello.txt"
        assert on_host.read_text() == "from sso"

        # the provider goes down: the hub, carol's lab and alice's session keep going
        provider.stop()
        assert hub.api("GET", "/").status_code == 200
        assert carol.read_text("work/hello.txt") == "from sso"
        assert alice.hub_user() == "alice"

        # ...and comes back on the same port with new keys: a new login works, no hub restart
        provider.start()
        again = Browser(hub.url)
        assert again.sso_login("alice").status_code == 302
        assert carol.read_text("work/hello.txt") == "from sso"
    finally:
        hub.stop()
        hub.reap()
        provider.stop()
