"""A lab shared live with a teammate: the team rule, the scopes, and a real hub with real labs."""

from __future__ import annotations

import json
import time

import pytest
import requests
from traitlets.config import Config

from labhub.hub.configure import configure
from labhub.hub.sharing import (
    GROUP_SHARE_REFUSAL,
    LAB_TOKEN_SCOPES,
    SHARE_SCOPES,
    guard_handlers,
    install_share_guard,
    narrowed_list_scope,
    share_refusal,
    user_role,
)

from ..support.browser import Browser
from ..support.hubconfig import PASSWORD, configured_config
from ..support.waiting import wait_until

# --- the rule, as data ---------------------------------------------------------


def test_share_with_a_teammate_is_allowed():
    assert share_refusal("alice", ["finance"], user="bob", user_groups=["finance", "x"]) is None
    assert share_refusal("alice", [], user="alice") is None  # oneself is no one new


def test_share_outside_the_teams_is_one_sentence_naming_both():
    refusal = share_refusal("alice", ["finance"], user="carol", user_groups=["clinical"])
    assert refusal == (
        "alice's lab can be shared only with people in one of their groups, and carol is in none."
    )
    assert share_refusal("alice", [], user="bob", user_groups=[])  # no groups: no teammates


def test_a_group_share_is_refused_since_it_lets_no_one_in():
    # JupyterHub 6.1 does not count group shares for the tokens labs check
    assert share_refusal("alice", ["finance"], group="finance") == GROUP_SHARE_REFUSAL
    assert share_refusal("alice", ["finance"], group="clinical") == GROUP_SHARE_REFUSAL


def test_the_user_list_narrows_to_self_and_teammates():
    assert narrowed_list_scope(None, "alice", ["finance"]) == {
        "user": {"alice"},
        "group": {"finance"},
    }
    narrower = {"user": {"alice"}}
    assert narrowed_list_scope(narrower, "alice", ["finance"]) is narrower


def test_user_role_keeps_the_admins_scopes_once():
    role = user_role(["self", "read:users:name", "access:servers!user"])
    assert role["name"] == "user"
    assert role["scopes"][:3] == ["self", "read:users:name", "access:servers!user"]
    assert set(SHARE_SCOPES) <= set(role["scopes"])
    assert len(role["scopes"]) == len(set(role["scopes"]))


# --- configure() ----------------------------------------------------------------


@pytest.fixture
def base(tmp_path):
    return {"lab_root": str(tmp_path / "lab"), "data_dir": str(tmp_path / "hub")}


def test_configure_turns_sharing_on_within_teams(base):
    c = Config()
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "access:servers!user"]}]
    configure(c, **base)
    configure(c, **base)  # twice: the same config
    (user,) = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
    assert user["scopes"] == ["self", "access:servers!user", *SHARE_SCOPES]
    assert c.Spawner.oauth_client_allowed_scopes == list(LAB_TOKEN_SCOPES)
    assert c.LabSharing.within_teams is True


def test_configure_opens_sharing_wider_or_turns_it_off(base, monkeypatch):
    c = Config()
    monkeypatch.setenv("LABHUB_SHARE_WITHIN_TEAMS", "false")
    configure(c, **base)
    assert c.LabSharing.within_teams is False
    configure(c, **base, sharing=False)
    (user,) = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
    assert not set(SHARE_SCOPES) & set(user["scopes"])


# --- a real hub, real labs --------------------------------------------------------


def _share(token: str, hub_url: str, owner: str, body: dict) -> requests.Response:
    return requests.post(
        f"{hub_url}/hub/api/shares/{owner}/",
        headers={"Authorization": f"token {token}"},
        json=body,
        timeout=30,
    )


def _names(r: requests.Response) -> set[str]:
    assert r.status_code == 200, r.text
    body = r.json()
    return {item["name"] for item in (body["items"] if isinstance(body, dict) else body)}


def _notebook(text: str) -> dict:
    cell = {"cell_type": "markdown", "metadata": {}, "source": text, "id": "c1"}
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.security
def test_owner_shares_a_running_lab_with_a_teammate_only(
    hub_factory, lab_image, lab_root, lab_prefix
):
    hub = hub_factory(configured_config(lab_image, lab_root, lab_prefix))
    for name in ("alice", "bob", "carol"):
        hub.create_user(name)
    for group, members in {"finance": ["alice", "bob"], "clinical": ["carol"]}.items():
        r = hub.api("POST", f"/groups/{group}", json={"users": members})
        assert r.status_code == 201, r.text
    people = {}
    for name in ("alice", "bob", "carol"):
        people[name] = Browser(hub.url)
        assert people[name].login(name, PASSWORD).status_code == 302
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    alice.start_lab()

    # the lab's Share entry: its token may share this lab and lists only alice's teams
    token = alice.page_token("alice")
    auth = {"Authorization": f"token {token}"}
    me = requests.get(f"{hub.url}/hub/api/user", headers=auth, timeout=30).json()
    # jupyter-collaboration shows its JupyterHub share dialog, listing users, for these scopes
    assert {"read:users:name", "shares!server=alice/", "list:users"} <= set(me["scopes"])
    users = requests.get(f"{hub.url}/hub/api/users", headers=auth, timeout=30)
    assert _names(users) == {"alice", "bob"}

    # outside the team: refused with one sentence, from the lab's token and from an admin's
    access = {"scopes": ["access:servers!server=alice/"]}
    refused = _share(token, hub.url, "alice", {"user": "carol", **access})
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        "alice's lab can be shared only with people in one of their groups, and carol is in none."
    )
    assert hub.api("POST", "/shares/alice/", json={"user": "carol"}).status_code == 403
    for group in ("clinical", "finance"):  # a group share would show access and let no one in
        by_group = _share(token, hub.url, "alice", {"group": group})
        assert by_group.status_code == 403 and by_group.json()["message"] == GROUP_SHARE_REFUSAL
    assert carol.open_lab("alice").status_code == 403  # and carol cannot open the lab
    # a share code lets in whoever holds it: none is made while shares stay within teams
    code = requests.post(f"{hub.url}/hub/api/share-codes/alice/", headers=auth, json={}, timeout=30)
    assert code.status_code == 403 and "share_within_teams" in code.json()["message"]

    # a teammate: shared, and the owner sees who has access
    shared = _share(token, hub.url, "alice", {"user": "bob", **access})
    assert shared.status_code == 200, shared.text
    listing = requests.get(f"{hub.url}/hub/api/shares/alice/", headers=auth, timeout=30)
    assert [item["user"]["name"] for item in listing.json()["items"]] == ["bob"]

    # bob edits alice's notebook through alice's lab URL; alice reads bob's edit
    notebook = {"type": "notebook", "format": "json"}
    put = alice.contents("PUT", "work/plan.ipynb", json={**notebook, "content": _notebook("a")})
    assert put.status_code in (200, 201), put.text
    assert bob.open_lab("alice").status_code == 200
    # the token alice's lab holds for bob cannot share bob's own labs (back to alice)
    guest_token = bob.page_token("alice")
    guest = {"Authorization": f"token {guest_token}"}
    scopes = requests.get(f"{hub.url}/hub/api/user", headers=guest, timeout=30).json()["scopes"]
    assert not [scope for scope in scopes if scope.startswith("shares")], scopes
    assert _share(guest_token, hub.url, "bob", {"user": "alice"}).status_code in (403, 404)
    read = bob.contents("GET", "work/plan.ipynb", owner="alice")
    assert read.status_code == 200 and read.json()["content"]["cells"][0]["source"] == "a"
    edit = {**notebook, "content": _notebook("a, and b from bob")}
    assert bob.contents("PUT", "work/plan.ipynb", owner="alice", json=edit).status_code == 200
    mine = alice.contents("GET", "work/plan.ipynb").json()
    assert mine["content"]["cells"][0]["source"] == "a, and b from bob"
    # the real-time collaboration server extension answers bob in alice's lab
    session = bob.lab_request(
        "alice",
        "PUT",
        "api/collaboration/session/work/plan.ipynb",
        json={"format": "json", "type": "notebook"},
    )
    assert session.status_code in (200, 201), session.text
    assert session.json()["fileId"]

    # revoked: bob's next request to alice's lab is refused
    revoked_at = time.monotonic()
    r = requests.patch(
        f"{hub.url}/hub/api/shares/alice/",
        headers=auth,
        data=json.dumps({"user": "bob"}),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    wait_until(
        lambda: bob.contents("GET", "work/plan.ipynb", owner="alice").status_code == 403,
        5,
        0.1,
        what="bob refused after the revoke",
    )
    print(f"revoked share refused after {time.monotonic() - revoked_at:.2f} s")

    # a stopped lab: JupyterHub keeps the share; the guest finds the lab not running
    alice.stop_lab()
    again = alice.session.post(
        f"{hub.url}/hub/api/shares/alice/",
        headers=alice._hub_xsrf(),
        json={"user": "bob"},
        timeout=30,
    )
    assert again.status_code == 200, again.text
    stopped = bob.contents("GET", "work/plan.ipynb", owner="alice")
    print(f"a guest of a stopped lab gets {stopped.status_code}")
    assert stopped.status_code == 424, stopped.status_code
    start = bob.session.post(
        f"{hub.url}/hub/api/users/alice/server", headers=bob._hub_xsrf(), timeout=30
    )
    # a share gives access, not start and stop: the hub does not show bob that server
    assert start.status_code == 404


# --- start-up and the labs ----------------------------------------------------------


class _Authenticator:
    def get_handlers(self, app):
        return [("/login", object)]


class _App:
    def __init__(self, config: Config):
        self.config = config
        self.authenticator = _Authenticator()


def test_the_guard_goes_in_front_of_any_authenticators_handlers_once():
    app = _App(Config())
    assert install_share_guard(app) and install_share_guard(app)
    handlers = app.authenticator.get_handlers(app)
    assert [h[0] for h in handlers] == [pattern for pattern, _ in guard_handlers()] + ["/login"]
    assert handlers[0][0] == r"/api/shares/([^/]+)/([^/]*)"


def test_no_guard_when_shares_may_go_anywhere():
    config = Config()
    config.LabSharing.within_teams = False
    app = _App(config)
    assert not install_share_guard(app)
    assert app.authenticator.get_handlers(app) == [("/login", object)]


def test_labs_recheck_a_visitor_every_second_and_never_cache_forever():
    from labhub.spawner.docker import LabDockerSpawner

    assert LabDockerSpawner().auth_cache_seconds == 1
    with pytest.raises(ValueError, match="auth_cache_seconds must be 1 or more"):
        LabDockerSpawner(auth_cache_seconds=0)
