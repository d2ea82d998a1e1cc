"""Directory groups become JupyterHub groups at login, by ``cn``, refreshed at every login (real slapd)."""

from __future__ import annotations

import asyncio

import pytest
from traitlets.config import Config

from labhub.auth import LabAuthenticator
from labhub.auth.groups import names_from_dns

from ..support.browser import Browser
from ..support.slapd import GPU_USERS, GROUPS, PEOPLE
from .test_directory_login import hub_config, login, make_auth


def test_names_from_dns_take_the_cn():
    dns = [
        "CN=Data Science,OU=Groups,DC=corp,DC=example",
        "cn=datasci,ou=groups,dc=lab,dc=test",
        "cn=datasci,ou=other,dc=lab,dc=test",
        "ou=not-a-group,dc=lab,dc=test",
        "not a dn",
        r"CN=R\2CD,OU=Groups,DC=corp",
    ]
    assert names_from_dns(dns) == ["Data Science", "datasci", "R,D"]


def test_manage_groups_follows_the_group_settings():
    c = Config()
    c.LabAuthenticator.mode = "ldap"
    assert LabAuthenticator(config=c).manage_groups is False
    c.LabAuthenticator.group_search_base = GROUPS
    assert LabAuthenticator(config=c).manage_groups is True
    c.LabAuthenticator.manage_groups = False
    assert LabAuthenticator(config=c).manage_groups is False


def test_dummy_mode_leaves_groups_alone():
    c = Config()
    c.LabAuthenticator.mode = "dummy"
    c.LabAuthenticator.dummy_password = "pw-pw-pw"
    c.LabAuthenticator.manage_groups = True
    auth = LabAuthenticator(config=c)
    user = asyncio.run(auth.get_authenticated_user(None, {"username": "x", "password": "pw-pw-pw"}))
    assert user["groups"] is None


@pytest.mark.ldap
def test_login_reads_every_group_by_cn_and_refreshes(slapd):
    auth = make_auth(slapd, group_search_base=GROUPS)
    assert set(login(auth, "alice", "alice-pw")["groups"]) == {"datasci", "gpuusers"}
    assert set(login(auth, "carol", "carol-pw")["groups"]) == {"datasci", "labadmins"}
    assert login(auth, "bob", "bob-pw")["groups"] == []
    slapd.modify(f"dn: {GPU_USERS}\nchangetype: modify\nadd: member\nmember: uid=bob,{PEOPLE}\n")
    try:
        assert login(auth, "bob", "bob-pw")["groups"] == ["gpuusers"]
    finally:
        slapd.modify(
            f"dn: {GPU_USERS}\nchangetype: modify\ndelete: member\nmember: uid=bob,{PEOPLE}\n"
        )
    assert login(auth, "bob", "bob-pw")["groups"] == []
    # without manage_groups the auth model has no groups key (JupyterHub leaves groups alone)
    assert "groups" not in login(make_auth(slapd), "alice", "alice-pw")


@pytest.mark.ldap
def test_hub_groups_follow_the_directory_at_every_login(hub_factory, slapd):
    hub = hub_factory(
        hub_config(slapd, f"c.LabAuthenticator.group_search_base = {GROUPS!r}").replace(
            "c.LabAuthenticator.allowed_groups", "# allowed_groups"
        )
        + "\nc.Authenticator.allow_all = True\n"
    )

    def groups_of(name: str) -> list[str]:
        return sorted(hub.api("GET", f"/users/{name}").json()["groups"])

    assert Browser(hub.url).login("alice", "alice-pw").status_code == 302
    assert groups_of("alice") == ["datasci", "gpuusers"]
    assert Browser(hub.url).login("bob", "bob-pw").status_code == 302
    assert groups_of("bob") == []
    slapd.modify(f"dn: {GPU_USERS}\nchangetype: modify\nadd: member\nmember: uid=bob,{PEOPLE}\n")
    try:
        Browser(hub.url).login("bob", "bob-pw")
        assert groups_of("bob") == ["gpuusers"]
    finally:
        slapd.modify(
            f"dn: {GPU_USERS}\nchangetype: modify\ndelete: member\nmember: uid=bob,{PEOPLE}\n"
        )
    Browser(hub.url).login("bob", "bob-pw")
    assert groups_of("bob") == []
    groups = {g["name"]: g for g in hub.api("GET", "/groups").json()}
    assert set(groups) >= {"datasci", "gpuusers"}
    assert groups["gpuusers"]["users"] == ["alice"]
