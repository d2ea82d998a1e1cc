"""LabAuthenticator against a real slapd on loopback: binds, groups, TLS, failover, a hung directory.

Marked ``security``: hostile usernames through the hub's login form never log in as
someone else, with both ways of finding a user (a DN template, and a search by a
service account); a login may only ever succeed as the user whose password was
given. And with ``store_password`` neither the user's password nor the search
account's password reaches the hub log, the lab container or the process list.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import threading
import time

import pytest
import requests
from tornado import web
from traitlets.config import Config

from labhub.auth import LabAuthenticator

from ..conftest import lab_spawner_config
from ..support.browser import Browser
from ..support.faults import lab_containers
from ..support.hub import HubProcess
from ..support.names import HOSTILE
from ..support.secrets import container_exposure, process_list
from ..support.slapd import (
    ADMINS,
    DATASCI,
    PASSWORDS,
    PEOPLE,
    SEARCH_DN,
    SEARCH_PW,
    SilentServer,
    ldap_login_lines,
)

pytestmark = pytest.mark.ldap


def make_auth(slapd, **settings) -> LabAuthenticator:
    c = Config()
    c.LabAuthenticator.mode = "ldap"
    c.LabAuthenticator.server_address = "127.0.0.1"
    c.LabAuthenticator.server_port = slapd.port
    c.LabAuthenticator.tls_strategy = "before_bind"
    c.LabAuthenticator.tls_ca_file = str(slapd.ca_file)
    c.LabAuthenticator.bind_dn_template = [f"uid={{username}},{PEOPLE}"]
    c.LabAuthenticator.allow_all = True
    for key, value in settings.items():
        setattr(c.LabAuthenticator, key, value)
    return LabAuthenticator(config=c)


def login(auth, username, password):
    return asyncio.run(
        auth.get_authenticated_user(None, {"username": username, "password": password})
    )


def test_good_and_bad_passwords(slapd):
    auth = make_auth(slapd)
    user = login(auth, "alice", "alice-pw")
    assert user["name"] == "alice"
    assert user["auth_state"]["dn"] == f"uid=alice,{PEOPLE}"
    assert "password" not in user["auth_state"]
    assert login(auth, "alice", "wrong") is None
    assert login(auth, "alice", "") is None
    assert login(auth, "alice", "   ") is None
    assert login(auth, "nobody", "alice-pw") is None


def test_case_domain_and_whitespace_forms(slapd):
    auth = make_auth(slapd)
    for typed in ("ALICE", " alice ", "LAB\\alice", "alice@lab.test"):
        user = login(auth, typed, "alice-pw")
        assert user and user["name"] == "alice", typed


@pytest.mark.parametrize(
    "username",
    ["*", ")(", "\\", "admin)(|(uid=*", "alice)(uid=*", "*)(uid=*))(|(uid=*", "alice,ou=x"],
)
def test_injection_usernames_get_nobody(slapd, username):
    for auth in (make_auth(slapd), lookup_auth(slapd)):
        assert login(auth, username, "alice-pw") is None
        assert login(auth, username, "x") is None


def test_nul_and_control_characters_refused(slapd):
    auth = make_auth(slapd)
    assert login(auth, "alice\x00", "alice-pw") is None
    assert login(auth, "ali\nce", "alice-pw") is None


def lookup_auth(slapd, **settings):
    return make_auth(
        slapd,
        bind_dn_template=[],
        lookup_dn=True,
        lookup_dn_search_user=SEARCH_DN,
        lookup_dn_search_password=SEARCH_PW,
        user_search_base=PEOPLE,
        user_attribute="sAMAccountName",
        lookup_dn_user_dn_attribute="sAMAccountName",
        **settings,
    )


def test_lookup_dn_finds_an_ad_like_entry(slapd):
    auth = lookup_auth(slapd)
    user = login(auth, "CORP\\DJones", "dave-pw")
    assert user["name"] == "djones"
    assert user["auth_state"]["dn"] == f"cn=Dave Jones,{PEOPLE}"
    assert user["auth_state"]["login_name"] == "djones"
    assert user["auth_state"]["domain"] == "CORP"
    assert login(auth, "djones", "alice-pw") is None
    # bind_dn_template cannot find dave: his DN does not contain his login
    assert login(make_auth(slapd), "djones", "dave-pw") is None


def test_allowed_groups_and_admin_groups(slapd):
    auth = make_auth(slapd, allow_all=False, allowed_groups=[DATASCI], admin_groups=[ADMINS])
    alice = login(auth, "alice", "alice-pw")
    assert alice["name"] == "alice" and alice["admin"] is False
    assert alice["auth_state"]["ldap_groups"] == [DATASCI]
    assert login(auth, "bob", "bob-pw") is None  # right password, wrong group
    carol = login(auth, "carol", "carol-pw")
    assert carol["admin"] is True


def test_search_filter_and_attributes(slapd):
    auth = make_auth(
        slapd,
        search_filter="(&(objectClass=inetOrgPerson)({userattr}={username})(mail=*@lab.test))",
        user_search_base=PEOPLE,
        user_attribute="uid",
        auth_state_attributes=["mail", "cn"],
    )
    user = login(auth, "alice", "alice-pw")
    assert user["auth_state"]["user_attributes"] == {
        "mail": ["alice@lab.test"],
        "cn": ["Alice Smith"],
    }
    strict = make_auth(
        slapd, search_filter="(&(uid={username})(mail=none))", user_search_base=PEOPLE
    )
    assert login(strict, "alice", "alice-pw") is None


def test_store_password_in_auth_state(slapd):
    auth = make_auth(slapd, store_password=True)
    user = login(auth, "LAB\\Alice", "alice-pw")
    assert user["auth_state"]["password"] == "alice-pw"
    assert user["auth_state"]["login_name"] == "alice"
    assert user["auth_state"]["domain"] == "LAB"


def test_ldaps_and_starttls_verify_the_certificate(slapd):
    ldaps = make_auth(slapd, tls_strategy="on_connect", server_port=slapd.ldaps_port)
    assert login(ldaps, "alice", "alice-pw")["name"] == "alice"
    starttls = make_auth(slapd)
    assert login(starttls, "alice", "alice-pw")["name"] == "alice"
    for strategy, port in (("on_connect", slapd.ldaps_port), ("before_bind", slapd.port)):
        wrong_ca = make_auth(
            slapd, tls_strategy=strategy, server_port=port, tls_ca_file=str(slapd.other_ca_file)
        )
        with pytest.raises(web.HTTPError) as info:
            login(wrong_ca, "alice", "alice-pw")
        assert info.value.status_code == 503
    # verification off is an explicit choice, and then the same server is accepted
    unverified = make_auth(slapd, tls_ca_file=str(slapd.other_ca_file), tls_verify=False)
    assert login(unverified, "alice", "alice-pw")["name"] == "alice"


def test_failover_to_the_second_server(slapd):
    silent = SilentServer()
    try:
        dead_port = SilentServer()
        dead_port.close()  # a port nobody listens on: refused at once
        for first in (f"127.0.0.1:{dead_port.port}", f"127.0.0.1:{silent.port}"):
            auth = make_auth(
                slapd,
                server_addresses=[first, f"127.0.0.1:{slapd.port}"],
                connect_timeout=1.0,
                response_timeout=1.0,
            )
            t0 = time.monotonic()
            assert login(auth, "alice", "alice-pw")["name"] == "alice"
            assert time.monotonic() - t0 < 5
            # a wrong password is not retried on the next server
            assert login(auth, "alice", "nope") is None
    finally:
        silent.close()


def test_hung_directory_fails_within_the_timeout(slapd):
    silent = SilentServer()
    try:
        auth = make_auth(
            slapd,
            server_addresses=[f"127.0.0.1:{silent.port}"],
            connect_timeout=1.0,
            response_timeout=2.0,
            login_timeout=3.0,
        )
        t0 = time.monotonic()
        with pytest.raises(web.HTTPError) as info:
            login(auth, "alice", "alice-pw")
        elapsed = time.monotonic() - t0
        assert info.value.status_code == 503 and "not answering" in info.value.log_message
        assert elapsed < 4.5, elapsed
    finally:
        silent.close()


# --- through a real hub -------------------------------------------------------------


def hub_config(slapd, extra: str = "") -> str:
    return (
        ldap_login_lines(slapd, groups=False)
        + f"""
c.LabAuthenticator.allowed_groups = [{DATASCI!r}]
c.LabAuthenticator.admin_groups = [{ADMINS!r}]
{extra}
"""
    )


def test_login_form_through_a_real_hub(hub_factory, slapd):
    hub = hub_factory(hub_config(slapd))
    ok = Browser(hub.url).login("Alice", "alice-pw")
    assert ok.status_code == 302 and "jupyterhub-session-id" in ok.cookies
    for user, password in (
        ("alice", "bad"),
        ("bob", "bob-pw"),
        ("alice", ""),
        ("*", "x"),
        ("admin)(|(uid=*", "x"),
    ):
        refused = Browser(hub.url).login(user, password)
        assert refused.status_code == 403, (user, refused.status_code)
        assert "Invalid username or password" in refused.text
    Browser(hub.url).login("carol", "carol-pw")
    users = {u["name"]: u for u in hub.api("GET", "/users").json()}
    assert users["carol"]["admin"] is True and users["alice"]["admin"] is False
    assert "bob" not in users
    log = hub.log_text()
    assert "alice-pw" not in log and "carol-pw" not in log
    assert "authentication mode ldap" in log


def test_hub_keeps_answering_while_the_directory_hangs(hub_factory, slapd):
    silent = SilentServer()
    try:
        extra = f"""
c.LabAuthenticator.server_addresses = ["127.0.0.1:{silent.port}"]
c.LabAuthenticator.connect_timeout = 2.0
c.LabAuthenticator.response_timeout = 5.0
c.LabAuthenticator.login_timeout = 6.0
"""
        hub = hub_factory(hub_config(slapd, extra))
        result = {}

        def stuck_login():
            t0 = time.monotonic()
            result["response"] = Browser(hub.url).login("alice", "alice-pw")
            result["seconds"] = time.monotonic() - t0

        thread = threading.Thread(target=stuck_login)
        thread.start()
        time.sleep(0.5)
        latencies = []
        while thread.is_alive() and len(latencies) < 200:
            t0 = time.monotonic()
            r = hub.api("GET", "/", timeout=5)
            latencies.append(time.monotonic() - t0)
            assert r.status_code == 200
            time.sleep(0.05)
        thread.join(30)
        print(
            f"\n/hub/api while LDAP hangs: {len(latencies)} requests, "
            f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
            f"stuck login refused after {result['seconds']:.1f} s"
        )
        assert max(latencies) < 1.0
        assert len(latencies) > 20
        assert result["response"].status_code == 503
        assert "not answering" in result["response"].text
        assert result["seconds"] < 8
    finally:
        silent.close()


# --- hostile names and secrets (security) ------------------------------------------

#: one DN-style user, one AD-like user whose DN does not contain the login, and a wrong password
TRIED_PASSWORDS = {"alice": PASSWORDS["alice"], "djones": PASSWORDS["djones"], None: "x"}


def ldap_lines(slapd, lookup: bool) -> str:
    lines = f"""
c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
c.LabAuthenticator.mode = "ldap"
c.LabAuthenticator.server_address = "127.0.0.1"
c.LabAuthenticator.server_port = {slapd.port}
c.LabAuthenticator.tls_strategy = "before_bind"
c.LabAuthenticator.tls_ca_file = {str(slapd.ca_file)!r}
c.LabAuthenticator.allow_all = True
"""
    if lookup:
        lines += f"""
c.LabAuthenticator.bind_dn_template = []
c.LabAuthenticator.lookup_dn = True
c.LabAuthenticator.lookup_dn_search_user = {SEARCH_DN!r}
c.LabAuthenticator.lookup_dn_search_password = {SEARCH_PW!r}
c.LabAuthenticator.user_search_base = {PEOPLE!r}
c.LabAuthenticator.user_attribute = "sAMAccountName"
c.LabAuthenticator.lookup_dn_user_dn_attribute = "sAMAccountName"
"""
    else:
        lines += f"""
c.LabAuthenticator.bind_dn_template = ["uid={{username}},{PEOPLE}"]
"""
    return lines


@pytest.mark.security
@pytest.mark.slow
@pytest.mark.parametrize("lookup", [False, True], ids=["bind-dn-template", "lookup-dn"])
def test_hostile_names_never_log_in_as_another_user(slapd, tmp_path, lookup):
    hub = HubProcess(tmp_path / "hub", ldap_lines(slapd, lookup)).start()
    try:
        logins = 0
        wrong = []
        for _kind, name in HOSTILE:
            for owner, password in TRIED_PASSWORDS.items():
                browser = Browser(hub.url)
                status = browser.login(name, password).status_code
                assert status < 500, f"{name!r}: {status}"
                user = browser.hub_user() if status == 302 else None
                logins += 1
                if user is not None and user != owner:
                    wrong.append(f"{name!r} with {owner}'s password logged in as {user!r}")
        assert not wrong, "\n".join(wrong)
        # the real names still work, so the refusals above are not a broken directory
        alice = Browser(hub.url)
        alice.login("alice", PASSWORDS["alice"])
        assert alice.hub_user() == "alice"
        if lookup:  # djones's DN (cn=Dave Jones) is found only by a search
            djones = Browser(hub.url)
            djones.login("djones", PASSWORDS["djones"])
            assert djones.hub_user() == "djones"
        print(f"\n{logins} hostile logins, none as another user")
    finally:
        hub.stop()


@pytest.mark.security
@pytest.mark.docker
def test_ldap_and_user_passwords_stay_secret(slapd, tmp_path, lab_image, docker_client):
    prefix = "labl" + secrets.token_hex(3)
    crypt_key = secrets.token_hex(32)
    config = lab_spawner_config(
        lab_image,
        tmp_path / "lab",
        prefix,
        ldap_lines(slapd, lookup=True)
        + """
c.LabAuthenticator.store_password = True
c.Authenticator.enable_auth_state = True
""",
    )
    hub = HubProcess(tmp_path / "hub", config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key}).start()
    try:
        browser = Browser(hub.url)
        status = browser.login("alice", PASSWORDS["alice"]).status_code
        assert (status, browser.hub_user()) == (302, "alice")
        hub.spawn("alice")
        (container,) = lab_containers(docker_client, prefix)
        exposed = container_exposure(container)
        procs = process_list()
        log = hub.log_text()
        # the admin role may read auth_state (JupyterHub's admin:auth_state); the user may not
        token = hub.api("POST", "/users/alice/tokens", json={"note": "t"}).json()["token"]
        model = requests.get(
            f"{hub.url}/hub/api/users/alice",
            headers={"Authorization": f"token {token}"},
            timeout=10,
        ).text
        assert '"name": "alice"' in model
        for what, secret in {
            "user password": PASSWORDS["alice"],
            "search password": SEARCH_PW,
            "crypt key": crypt_key,
        }.items():
            assert secret not in exposed, f"{what} in the lab container's inspect output"
            assert secret not in log, f"{what} in the hub log"
            assert secret not in model, f"{what} in the REST API"
            if what != "crypt key":  # the hub's own environment holds the key, not its command line
                assert secret not in procs, f"{what} in the process list"
        assert crypt_key not in procs
        # the password is kept, encrypted, for the user's own shares (admin:auth_state only)
        state = hub.api("GET", "/users/alice").json()
        assert state["auth_state"]["password"] == PASSWORDS["alice"]
        assert PASSWORDS["alice"].encode() not in (tmp_path / "hub" / "hub.sqlite").read_bytes()
        hub.stop_server("alice")
    finally:
        hub.stop()
        for c in lab_containers(docker_client, prefix):
            c.remove(force=True)
