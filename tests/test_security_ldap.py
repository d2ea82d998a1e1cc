"""Hostile usernames against a real slapd, through the hub's login form: nobody logs in as someone else.

Every name of the hostile list is tried with the password of each directory user,
with both ways of finding a user (a DN template, and a search by a service
account). A login may only ever succeed as the user whose password was given.
Then a lab is started for an LDAP user with ``store_password``: neither the
user's password nor the search account's password reaches the hub log, the lab
container or the process list.
"""

from __future__ import annotations

import secrets

import pytest
import requests

from .conftest import lab_spawner_config
from .support.faults import lab_containers
from .support.hub import HubProcess
from .support.names import HOSTILE
from .support.slapd import PASSWORDS, PEOPLE, SEARCH_DN, SEARCH_PW
from .test_security_secrets import container_exposure, process_list

pytestmark = [pytest.mark.ldap]

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


def form_login(hub, username: str, password: str) -> tuple[int, str | None]:
    """Log in through the form; return the status and the hub user the session belongs to."""
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=10)
    r = session.post(
        f"{hub.url}/hub/login",
        data={"username": username, "password": password, "_xsrf": session.cookies.get("_xsrf")},
        allow_redirects=False,
        timeout=60,
    )
    if r.status_code != 302:
        return r.status_code, None
    who = session.get(
        f"{hub.url}/hub/api/user",
        headers={"X-XSRFToken": session.cookies.get("_xsrf", "")},
        timeout=10,
    )
    assert who.status_code == 200, who.text
    return r.status_code, who.json()["name"]


@pytest.mark.slow
@pytest.mark.parametrize("lookup", [False, True], ids=["bind-dn-template", "lookup-dn"])
def test_hostile_names_never_log_in_as_another_user(slapd, tmp_path, lookup):
    hub = HubProcess(tmp_path / "hub", ldap_lines(slapd, lookup)).start()
    try:
        logins = 0
        wrong = []
        for _kind, name in HOSTILE:
            for owner, password in TRIED_PASSWORDS.items():
                status, user = form_login(hub, name, password)
                assert status < 500, f"{name!r}: {status}"
                logins += 1
                if user is not None and user != owner:
                    wrong.append(f"{name!r} with {owner}'s password logged in as {user!r}")
        assert not wrong, "\n".join(wrong)
        # the real names still work, so the refusals above are not a broken directory
        assert form_login(hub, "alice", PASSWORDS["alice"])[1] == "alice"
        if lookup:  # djones's DN (cn=Dave Jones) is found only by a search
            assert form_login(hub, "djones", PASSWORDS["djones"])[1] == "djones"
        print(f"\n{logins} hostile logins, none as another user")
    finally:
        hub.stop()


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
        status, user = form_login(hub, "alice", PASSWORDS["alice"])
        assert (status, user) == (302, "alice")
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
