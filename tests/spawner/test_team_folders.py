"""Team folders through a real hub, slapd's groups and real containers, on Docker, Swarm and the warm pool.

Two teams and three users: who is in both sees and writes both folders, who is in
one sees only that one, a file one member writes is in a teammate's lab at once
(2100:2100), and leaving a group in the directory takes the folder out of the next
lab. Hostile group names (the username corpus) make safe folders or one sentence;
a group deleted while its lab runs loses nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from labhub.lab import teams
from labhub.lab.folders import TEAM_MODE
from labhub.lab.names import user_folder_name
from labhub.pool import model as pool

from ..conftest import lab_spawner_config
from ..support.browser import Browser
from ..support.contents import get_file, put_file
from ..support.labs import lab_container, lab_exec
from ..support.names import HOSTILE_USERNAMES
from ..support.pools import free_pool, pool_hub, wait_full
from ..support.slapd import GROUPS, PEOPLE, ldap_login_lines

pytestmark = pytest.mark.docker

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


@pytest.fixture
def two_teams(slapd):
    """Two directory groups of this test only: alice in both, bob in finance, carol in clinical."""
    tag = secrets.token_hex(3)
    finance, clinical = f"finance-{tag}", f"Clinical Research-{tag}"
    members = {finance: ["alice", "bob"], clinical: ["alice", "carol"]}
    slapd.modify(
        "\n".join(
            f"dn: {group_dn(name)}\nchangetype: add\nobjectClass: groupOfNames\ncn: {name}\n"
            + "".join(f"member: uid={uid},{PEOPLE}\n" for uid in uids)
            for name, uids in members.items()
        )
    )
    yield SimpleNamespace(finance=finance, clinical=clinical, pattern=f"*-{tag}")
    slapd.modify("\n".join(f"dn: {group_dn(name)}\nchangetype: delete\n" for name in members))


def ldap_teams_config(slapd, image, lab_root, prefix, pattern: str, spawner: str) -> str:
    config = lab_spawner_config(
        image,
        lab_root,
        prefix,
        ldap_login_lines(slapd)
        + textwrap.dedent(
            f"""
            c.Authenticator.allow_all = True
            c.LabDockerSpawner.team_folders = [{pattern!r}]
            """
        ),
    )
    return config.replace("LabDockerSpawner", spawner)


def log_in(hub, user: str) -> None:
    """Log ``user`` in through the form: the directory's groups become the hub's at every login."""
    assert Browser(hub.url).login(user, PASSWORDS[user]).status_code == 302


def listed_teams(hub, user: str) -> set[str]:
    """The team folders ``user``'s lab shows, through its contents API."""
    r = hub.user_request(user, "GET", "/api/contents/teams?content=1")
    if r.status_code == 404:
        return set()
    assert r.status_code == 200, r.text
    return {entry["name"] for entry in r.json()["content"]}


def owner_mode(path) -> tuple[int, int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def teammates_share_and_others_do_not(hub, lab_root, t) -> None:
    """alice (both teams), bob (finance), carol (clinical): what each lab sees and writes."""
    assert listed_teams(hub, "alice") == {t.finance, t.clinical}
    assert listed_teams(hub, "bob") == {t.finance}
    assert listed_teams(hub, "carol") == {t.clinical}
    put_file(hub, "alice", f"teams/{t.finance}/plan.txt", "budget 2027")
    put_file(hub, "alice", f"teams/{t.clinical}/trial.txt", "cohort B")
    # at once, no wait: the teammate's lab shows the same folder
    assert get_file(hub, "bob", f"teams/{t.finance}/plan.txt").json()["content"] == "budget 2027"
    assert get_file(hub, "carol", f"teams/{t.clinical}/trial.txt").json()["content"] == "cohort B"
    put_file(hub, "bob", f"teams/{t.finance}/reply.txt", "approved")
    assert get_file(hub, "alice", f"teams/{t.finance}/reply.txt").json()["content"] == "approved"
    # the other team's files are out of reach
    assert get_file(hub, "bob", f"teams/{t.clinical}/trial.txt").status_code == 404
    assert get_file(hub, "carol", f"teams/{t.finance}/plan.txt").status_code == 404
    for group, name in ((t.finance, "plan.txt"), (t.clinical, "trial.txt")):
        folder = teams.team_folder(str(lab_root), group)
        assert owner_mode(folder) == (2100, 2100, TEAM_MODE)
        assert owner_mode(os.path.join(folder, name))[:2] == (2100, 2100)
    assert owner_mode(os.path.join(teams.team_folder(str(lab_root), t.finance), "reply.txt"))[
        :2
    ] == (2100, 2100)


def reaches(mount_sources: list[str], folder: str) -> list[str]:
    """The mount sources through which ``folder`` is reachable: itself or a folder above it."""
    return [s for s in mount_sources if folder == s or folder.startswith(s.rstrip("/") + "/")]


@pytest.mark.ldap
@pytest.mark.security
def test_two_teams_three_users_and_leaving_a_group(
    hub_factory, slapd, two_teams, lab_image, lab_root, lab_prefix, docker_client
):
    t = two_teams
    hub = hub_factory(
        ldap_teams_config(slapd, lab_image, lab_root, lab_prefix, t.pattern, "LabDockerSpawner")
    )
    for user in ("alice", "bob", "carol"):
        log_in(hub, user)
        hub.spawn(user)
    groups = {u["name"]: set(u["groups"]) for u in hub.api("GET", "/users").json()}
    # carol is in datasci and labadmins too: only the groups team_folders matches get a folder
    assert {"datasci", "labadmins", t.clinical} <= groups["carol"]
    teammates_share_and_others_do_not(hub, lab_root, t)

    # every lab runs as 2100: nothing but its mounts decides what it reaches
    clinical = teams.team_folder(str(lab_root), t.clinical)
    bob = lab_container(docker_client, lab_prefix, "bob")
    sources = [m["Source"] for m in bob.attrs["Mounts"]]
    assert not reaches(sources, clinical), sources
    code, out = lab_exec(bob, ["ls", "/home/jovyan/teams"])
    assert code == 0 and out.split("\n")[:-1] == [t.finance]

    # alice leaves clinical in the directory: her next lab (after her next login) lacks it
    hub.stop_server("alice")
    slapd.modify(
        f"dn: {group_dn(t.clinical)}\nchangetype: modify\ndelete: member\n"
        f"member: uid=alice,{PEOPLE}\n"
    )
    log_in(hub, "alice")
    hub.spawn("alice")
    assert listed_teams(hub, "alice") == {t.finance}
    alice = lab_container(docker_client, lab_prefix, "alice")
    assert not reaches([m["Source"] for m in alice.attrs["Mounts"]], clinical)
    assert get_file(hub, "alice", f"teams/{t.clinical}/trial.txt").status_code == 404
    # nothing was deleted: the team keeps its folder and its files
    assert Path(clinical, "trial.txt").read_text() == "cohort B"
    assert get_file(hub, "carol", f"teams/{t.clinical}/trial.txt").json()["content"] == "cohort B"


@pytest.mark.reliability
def test_hostile_group_names_and_a_group_deleted_while_its_lab_runs(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client, tmp_path
):
    # slow_spawn_timeout 0: the start answers at once, and the spawn page's events are read live
    extra = """
c.LabDockerSpawner.team_folders = True
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
"""
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))
    hub.create_user("dora")
    made = []
    for name in [*HOSTILE_USERNAMES, "gone-team", "planted"]:
        r = hub.api("POST", "/groups", json={"groups": [name], "users": ["dora"]})
        if r.status_code == 201:
            made.append(name)
    print(f"\nthe hub made {len(made)} of {len(HOSTILE_USERNAMES) + 2} groups")
    assert "gone-team" in made and ".." in made and "a/b" in made
    plan = teams.plan_teams(("*",), made)
    mounted = sorted(set(plan.teams) - {"planted"})
    # a link where team "planted"'s folder belongs: refused, its target untouched
    root = teams.teams_root(str(lab_root))
    os.makedirs(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    os.symlink(elsewhere, os.path.join(root, "planted"))

    started = hub.api("POST", "/users/dora/server")
    assert started.status_code == 202, started.text
    messages = [event.get("message", "") for event in hub.progress_events("dora")]
    hub.wait_ready("dora")
    # each refused name is one sentence on the spawn page; the lab started anyway
    for _group, sentence in plan.refused:
        assert sentence in messages
    assert (
        f"Team 'planted' gets no folder in this lab: {root}/planted exists but is not a folder "
        "(a symlink or a file); move it away."
    ) in messages
    assert owner_mode(elsewhere) == (0, 0, 0o700)
    print(f"{len(mounted)} team folders mounted, {len(plan.refused)} names refused")

    dora = lab_container(docker_client, lab_prefix, "dora")
    listing = "import json, os; print(json.dumps(os.listdir('.')))"
    code, out = lab_exec(dora, ["python3", "-c", listing], workdir="/home/jovyan/teams")
    assert code == 0, out
    seen = json.loads(out)
    assert sorted(seen) == mounted
    # on the host: one folder per team, each a safe name right under teams/, nothing elsewhere
    assert sorted(os.listdir(root)) == sorted(user_folder_name(g) for g in plan.teams)
    assert set(os.listdir(lab_root)) == {
        "personal_notebooks",
        "shared_notebooks",
        "packages",
        "teams",
    }
    for mount in dora.attrs["Mounts"]:
        if "/teams/" in mount["Destination"]:
            assert os.path.dirname(mount["Source"]) == root and mount["RW"]

    # the group is deleted while the lab runs: the folder and its file stay, in the lab and on disk
    put_file(hub, "dora", "teams/gone-team/keep.txt", "kept")
    assert hub.api("DELETE", "/groups/gone-team").status_code == 204
    assert get_file(hub, "dora", "teams/gone-team/keep.txt").json()["content"] == "kept"
    hub.stop_server("dora")
    hub.spawn("dora")
    assert get_file(hub, "dora", "teams/gone-team/keep.txt").status_code == 404
    assert Path(root, "gone-team", "keep.txt").read_text() == "kept"


def test_a_member_of_two_teams_from_a_warm_pool(
    hub_factory, lab_image, lab_root, pool_root, lab_prefix, docker_client
):
    """A pool container cannot gain mounts: a team member's lab starts the normal way, whole."""
    hub = pool_hub(
        hub_factory,
        lab_image,
        lab_root,
        lab_prefix,
        1,
        extra="c.LabDockerSpawner.team_folders = True\n",
    )
    for user in ("ann", "ben"):
        hub.create_user(user)
    for group in ("finance", "clinical"):
        assert hub.api("POST", "/groups", json={"groups": [group], "users": ["ann"]}).ok
    # the pool is asked before it is looked into: ann's lab does not fit, full pool or not
    hub.spawn("ann")
    assert "starts without the warm pool: the lab mounts /home/jovyan/teams/clinical" in (
        hub.log_text()
    )
    ann = docker_client.containers.get(f"{lab_prefix}-ann")
    assert pool.LABEL_SLOT not in ann.labels
    assert listed_teams(hub, "ann") == {"finance", "clinical"}
    put_file(hub, "ann", "teams/clinical/a.txt", "x")
    put_file(hub, "ann", "work/mine.txt", "y")
    # the pool still serves a user with no team
    waiting = {c.id for c in wait_full(docker_client, lab_prefix, 1)}
    hub.spawn("ben")
    ben = docker_client.containers.get(f"{lab_prefix}-ben")
    assert ben.id in waiting
    assert listed_teams(hub, "ben") == set()
    assert {c.id for c in free_pool(docker_client, lab_prefix)} & {ann.id, ben.id} == set()


@pytest.mark.swarm
@pytest.mark.ldap
def test_two_teams_on_a_one_node_swarm(
    swarm, hub_factory, slapd, two_teams, lab_image, lab_root, lab_prefix, docker_client
):
    t = two_teams
    lab_root.mkdir()  # the NFS mount every node has; the folder helper makes the rest
    hub = hub_factory(
        ldap_teams_config(slapd, lab_image, lab_root, lab_prefix, t.pattern, "LabSwarmSpawner")
    )
    for user in ("alice", "bob", "carol"):
        log_in(hub, user)
        hub.spawn(user)
    teammates_share_and_others_do_not(hub, lab_root, t)
    spec = docker_client.services.get(f"{lab_prefix}-bob").attrs["Spec"]["TaskTemplate"]
    mounts = {m["Target"]: m for m in spec["ContainerSpec"]["Mounts"]}
    assert mounts[f"/home/jovyan/teams/{t.finance}"]["Source"] == teams.team_folder(
        str(lab_root), t.finance
    )
    clinical = teams.team_folder(str(lab_root), t.clinical)
    assert not reaches([m["Source"] for m in mounts.values()], clinical)
    assert json.dumps(sorted(mounts))  # every target is plain text the engine took
