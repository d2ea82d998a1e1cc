"""Team folders without a daemon: which groups get one, their names, folders, mounts and settings."""

from __future__ import annotations

import os
import posixpath
import stat
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from labhub.hub.configure import LabConfigError, configure
from labhub.lab import teams
from labhub.lab.build import build_lab
from labhub.lab.folder_task import FolderJob, helper_command
from labhub.lab.folders import TEAM_MODE, LabFolderError, ensure_team_folder
from labhub.lab.names import user_folder_name
from labhub.lab.settings import LabSettings, merge_profile
from labhub.pool import model as pool
from labhub.spawner.docker import LabDockerSpawner
from labhub.spawner.settings import settings_from_traits
from labhub.spawner.swarm import LabSwarmSpawner

from ..support.names import HOSTILE_USERNAMES

ROOT = "/srv/lab"
WORK = "/home/jovyan/work"


# --- which groups ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "patterns"),
    [(True, ("*",)), (False, ()), (None, ()), (["a", "team-*"], ("a", "team-*"))],
)
def test_the_setting_becomes_patterns(value, patterns):
    assert teams.team_patterns(value) == patterns


@pytest.mark.parametrize("bad", ["finance", [""], [3]])
def test_a_wrong_setting_is_one_sentence(bad):
    with pytest.raises(ValueError, match="team_folders") as err:
        teams.team_patterns(bad)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


def test_true_is_every_group_and_a_list_only_those_it_matches():
    groups = ["finance", "clinical", "team-a", "Team-B", "datasci"]
    assert teams.selected_groups(("*",), groups) == sorted(groups)
    assert teams.selected_groups(("team-*", "finance"), groups) == ["finance", "team-a"]
    # hub group names are case-sensitive, and so are the patterns
    assert teams.selected_groups(("team-*",), groups) == ["team-a"]
    assert teams.selected_groups(("[Tt]eam-?",), groups) == ["Team-B", "team-a"]
    assert teams.selected_groups((), groups) == []
    assert teams.selected_groups(("*",), ["a", "a"]) == ["a"]


# --- names, folders and mounts ----------------------------------------------------------


def test_folder_and_mount_path():
    assert teams.team_folder(ROOT, "finance") == "/srv/lab/teams/finance"
    assert teams.team_folder(ROOT, "Finance") == f"/srv/lab/teams/{user_folder_name('Finance')}"
    assert teams.team_mount_path(WORK, "Équipe Finance") == "/home/jovyan/teams/Équipe Finance"
    assert teams.team_mount_path("/data/work", "x") == "/data/teams/x"
    [mount] = teams.team_mounts(ROOT, WORK, ["finance"])
    assert mount == {
        "Type": "bind",
        "Source": "/srv/lab/teams/finance",
        "Target": "/home/jovyan/teams/finance",
        "ReadOnly": False,
    }


@pytest.mark.parametrize(
    ("group", "reason"),
    [
        ("", "blank"),
        ("  ", "blank"),
        (" finance", "starts or ends with a blank"),
        ("a/b", "'/'"),
        ("..", "'.'"),
        (".hidden", "'.'"),
        ("a\x00b", "control or invisible"),
        ("a\nb", "control or invisible"),
        ("finance\u200b", "control or invisible"),
        ("a\u202eecila", "control or invisible"),
        ("x" * 256, "longer than 255 bytes"),
        ("é" * 128, "longer than 255 bytes"),
    ],
)
def test_names_that_cannot_be_folders_are_refused_in_one_sentence(group, reason):
    sentence = teams.refusal(group)
    assert sentence is not None and reason in sentence
    assert sentence.startswith("Group ") and sentence.endswith("rename the group.")
    assert "\n" not in sentence and "\x00" not in sentence


def test_hostile_group_names_are_safe_and_never_collide():
    """The username corpus as group names: folders stay under teams/, no two share one."""
    plan = teams.plan_teams(("*",), HOSTILE_USERNAMES)
    assert len(plan.teams) + len(plan.refused) == len(HOSTILE_USERNAMES)
    assert plan.teams and plan.refused
    root = teams.teams_root(ROOT)
    folders = [teams.team_folder(ROOT, group) for group in plan.teams]
    assert len(set(folders)) == len(folders)
    for folder in folders:
        assert os.path.dirname(folder) == root and os.path.normpath(folder) == folder
    mounts = teams.team_mounts(ROOT, WORK, plan.teams)
    targets = [m["Target"] for m in mounts]
    assert len(set(targets)) == len(targets)
    for target, group in zip(targets, plan.teams, strict=True):
        assert posixpath.dirname(target) == "/home/jovyan/teams"
        assert posixpath.basename(target) == group
    # the names people can read are kept, whatever their script
    assert {"émilie", "日本語", "😀", "a b", "Alice", "CON"} <= set(plan.teams)
    assert {"..", ".", "/", "a/b", "", " ", "a\x00b", "a\u202eecila"} <= {
        g for g, _ in plan.refused
    }


def test_a_lab_gets_exactly_its_teams_and_the_pool_template_none():
    settings = LabSettings(lab_root=ROOT, team_folders=("*",))
    lab = build_lab(settings, "alice", command=["jupyterhub-singleuser"], team_names=["a", "b"])
    targets = {m["Target"] for m in lab.mounts}
    assert {"/home/jovyan/teams/a", "/home/jovyan/teams/b"} <= targets
    plain = build_lab(settings, "alice", command=["jupyterhub-singleuser"])
    assert not any("/teams/" in m["Target"] for m in plain.mounts)
    # the pool's containers are no one's: a team member's lab starts the normal way
    template, _targets, overrides = pool.pool_template(settings)
    key = pool.pool_spec(pool.template_lab(template, _targets, "/p", "0" * 12), overrides)[1]
    held = pool.template_lab(template, _targets, "/p", "0" * 12)
    with pytest.raises(pool.PoolMismatch, match="teams/a"):
        pool.fit(lab, overrides, held, key)
    assert pool.fit(plain, overrides, held, key)


def test_an_admin_mount_on_a_team_path_is_refused():
    settings = LabSettings(lab_root=ROOT, lab_volumes={"/data": "/home/jovyan/teams/a"})
    with pytest.raises(ValueError, match="share the container path /home/jovyan/teams/a"):
        build_lab(settings, "alice", command=["x"], team_names=["a"])


# --- the settings -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [LabDockerSpawner, LabSwarmSpawner])
def test_the_trait_on_both_spawners(cls):
    spawner = cls(user=SimpleNamespace(name="alice"))
    assert spawner.team_folders is False
    assert settings_from_traits(spawner).team_folders == ()
    spawner.team_folders = True
    assert settings_from_traits(spawner).team_folders == ("*",)
    spawner.team_folders = ["team-*"]
    assert settings_from_traits(spawner).team_folders == ("team-*",)
    with pytest.raises(ValueError, match="team_folders holds ''"):
        spawner.team_folders = [""]


def test_a_profile_may_change_it():
    settings = LabSettings(team_folders=("*",))
    assert merge_profile(settings, {"team_folders": False}).team_folders == ()
    assert merge_profile(settings, {"team_folders": ["x"]}).team_folders == ("x",)


@pytest.mark.parametrize(
    ("env", "value"),
    [("true", True), ("Yes", True), ("false", False), ("team-*, finance", ["team-*", "finance"])],
)
def test_configure_from_the_environment(base, monkeypatch, env, value):
    monkeypatch.setenv("LABHUB_TEAM_FOLDERS", env)
    c = Config()
    configure(c, **base)
    assert c.LabDockerSpawner.team_folders == value


def test_configure_keywords(base):
    c = Config()
    configure(c, **base)
    assert "team_folders" not in c.LabDockerSpawner  # the trait's default: off
    configure(c, **base, team_folders=True, spawner="swarm")
    assert c.LabSwarmSpawner.team_folders is True
    with pytest.raises(LabConfigError, match="team_folders"):
        configure(Config(), **base, team_folders=["ok", ""])


# --- the folder on disk ----------------------------------------------------------------


def test_helper_makes_a_team_folder_with_its_mode():
    job = FolderJob(
        folder="/srv/lab/teams/a",
        uid=2100,
        gid=2100,
        personal_root="/srv/lab/teams",
        shared_root="/srv/lab/shared_notebooks",
        folder_mode=TEAM_MODE,
    )
    command = helper_command(job)
    assert command[4:8] == ["/srv/lab/teams/a", "2100", "2100", "2770"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to the lab uid needs root")
def test_team_folder_owner_mode_and_no_link_followed(tmp_path):
    folder = tmp_path / "teams" / "a"
    folder.parent.mkdir()
    assert ensure_team_folder(str(folder), 2100, 2100) is True
    st = os.lstat(folder)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (2100, 2100, TEAM_MODE)
    # an existing folder keeps its files (a member left, or the group is gone)
    (folder / "kept.txt").write_text("x")
    assert ensure_team_folder(str(folder), 2100, 2100) is False
    assert (folder / "kept.txt").read_text() == "x"
    # a link where a team folder belongs is refused, its target untouched
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (folder.parent / "b").symlink_to(elsewhere)
    with pytest.raises(LabFolderError, match="not a folder"):
        ensure_team_folder(str(folder.parent / "b"), 2100, 2100)
    assert os.lstat(elsewhere).st_uid == 0
