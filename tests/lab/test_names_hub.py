"""labhub.lab.names through a real hub: hostile usernames via the login form and the REST API.

The form is LabAuthenticator's in dummy mode, XSRF token included. Each name is
either refused, or becomes a hub user whose lab writes into exactly one folder of
its own directly inside ``personal_notebooks/``; no two hub users share a folder
and nothing is created anywhere else under ``lab_root``.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from labhub.auth.usernames import split_login
from labhub.lab.names import MAX_NAME_LENGTH, user_folder_name

from ..conftest import lab_spawner_config
from ..support.browser import Browser
from ..support.faults import lab_containers
from ..support.hub import HubProcess, SpawnFailed
from ..support.names import HOSTILE

pytestmark = [pytest.mark.docker, pytest.mark.security, pytest.mark.slow]

PASSWORD = "lab-dev-password"

#: labhub's own login in dummy mode, as a lab in development runs it
LAB_DUMMY = f"""
c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
c.LabAuthenticator.mode = "dummy"
c.LabAuthenticator.dummy_password = {PASSWORD!r}
"""

_FORM_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")

#: Filled by the per-name tests: hub username -> folder name; checked by the last test.
OUTCOMES: dict[str, dict] = {}


@pytest.fixture(scope="module")
def hostile_hub(lab_image, docker_client, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    prefix = "labh" + secrets.token_hex(3)
    config = lab_spawner_config(lab_image, root / "lab", prefix, LAB_DUMMY)
    hub = HubProcess(root / "hub", config)
    hub.lab_root = root / "lab"
    hub.prefix = prefix
    hub.start()
    yield hub
    hub.stop()
    for container in lab_containers(docker_client, prefix):
        container.remove(force=True)


def hub_users(hub) -> set[str]:
    return {u["name"] for u in hub.api("GET", "/users").json()}


def check_inside(hub, username: str) -> str:
    """Spawn ``username``'s lab, write through it, return its folder name after checking it."""
    personal_root: Path = hub.lab_root / "personal_notebooks"
    hub.spawn(username)
    marker = f"owner {username!r}"
    r = hub.user_request(
        username,
        "PUT",
        "/api/contents/work/owner.txt",
        json={"type": "file", "format": "text", "content": marker},
    )
    assert r.status_code in (200, 201), r.text
    folder = user_folder_name(username)
    path = personal_root / folder
    assert path.resolve().parent == personal_root.resolve()
    assert (path / "owner.txt").read_text() == marker
    assert len(folder) <= MAX_NAME_LENGTH and "/" not in folder and folder not in (".", "..")
    hub.stop_server(username)
    return folder


@pytest.mark.parametrize("kind,name", HOSTILE, ids=[f"{k}-{i}" for i, (k, _) in enumerate(HOSTILE)])
def test_hostile_name_through_login_form(hostile_hub, kind, name):
    hub = hostile_hub
    before = hub_users(hub)
    r = Browser(hub.url).login(name, PASSWORD)
    assert r.status_code < 500, f"{name!r}: {r.status_code} {r.text[:300]}"
    new = hub_users(hub) - before
    if r.status_code != 302:
        # refused: the form is shown again with an error, no user was made
        assert not new, new
        OUTCOMES[name] = {"kind": kind, "via": "form", "result": "rejected"}
        return
    assert len(new) <= 1
    username = new.pop() if new else None
    if username is None:
        # the form's name is cleaned (control characters become spaces, as tornado does for
        # every form argument) and normalised; it must then be a user who already exists
        username = split_login(_FORM_CONTROL.sub(" ", name)).user.lower()
        assert username in before, f"{name!r} logged in as nobody we know"
    folder = check_inside(hub, username)
    OUTCOMES[name] = {"kind": kind, "via": "form", "user": username, "folder": folder}


def test_hostile_names_through_api(hostile_hub, docker_client):
    """The REST API applies the same rules; every created name gets a distinct, safe folder."""
    hub = hostile_hub
    folders: dict[str, str] = {}
    for _kind, name in HOSTILE:
        r = hub.api("POST", "/users", json={"usernames": [name]})
        assert r.status_code in (201, 400, 409), f"{name!r}: {r.status_code} {r.text}"
        if r.status_code == 201:
            created = r.json()[0]["name"]
            folders[created] = user_folder_name(created)
    users = hub_users(hub) - {"tests"}
    by_folder: dict[str, set[str]] = {}
    for user in users:
        by_folder.setdefault(user_folder_name(user), set()).add(user)
    shared = {f: u for f, u in by_folder.items() if len(u) > 1}
    assert not shared, f"users share a folder: {shared}"
    # every API-only user really starts and stays inside, or is refused in one sentence
    for user in sorted(set(folders) - {o.get("user") for o in OUTCOMES.values()}):
        if "\x00" in user:
            with pytest.raises(SpawnFailed) as failed:
                hub.spawn(user)
            assert "NUL character" in failed.value.text, failed.value.text
            assert not (hub.lab_root / "personal_notebooks" / user_folder_name(user)).exists()
            assert lab_containers(docker_client, hub.prefix) == []
            continue
        check_inside(hub, user)


def test_no_two_users_share_a_folder(hostile_hub):
    hub = hostile_hub
    assert len(OUTCOMES) == len({n for _, n in HOSTILE}), "run the per-name tests first"
    personal_root = hub.lab_root / "personal_notebooks"
    by_folder: dict[str, set[str]] = {}
    for outcome in OUTCOMES.values():
        if "folder" in outcome:
            by_folder.setdefault(outcome["folder"], set()).add(outcome["user"])
    assert all(len(users) == 1 for users in by_folder.values()), by_folder
    assert set(by_folder) <= {p.name for p in personal_root.iterdir()}
    # nothing else appeared under lab_root: only the lab folders
    assert sorted(p.name for p in hub.lab_root.iterdir()) == [
        "packages",
        "personal_notebooks",
        "shared_notebooks",
    ]
    # every folder on disk is a direct child holding one owner's marker
    for path in personal_root.iterdir():
        assert path.is_dir() and not path.is_symlink(), path
    for folder, users in by_folder.items():
        (user,) = users
        assert (personal_root / folder / "owner.txt").read_text() == f"owner {user!r}"
    rejected = sum(1 for o in OUTCOMES.values() if o.get("result") == "rejected")
    print(
        f"\n{len(OUTCOMES)} hostile names through the form: {rejected} refused, "
        f"{len(OUTCOMES) - rejected} logged in as {len(by_folder)} distinct users, one folder each"
    )
