"""labhub.lab.names: every username maps to one safe folder name, and no two share one."""

from __future__ import annotations

import itertools
import re

import pytest

from labhub.lab.names import MAX_NAME_LENGTH, is_safe_name, user_folder_name

from ..support.names import HOSTILE_USERNAMES

HOSTILE = HOSTILE_USERNAMES


@pytest.mark.parametrize("name", HOSTILE)
def test_folder_name_is_a_single_safe_component(name):
    folder = user_folder_name(name)
    assert is_safe_name(folder) or re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*--[0-9a-f]{12}", folder)
    assert "/" not in folder and "\\" not in folder and "\x00" not in folder
    assert folder not in (".", "..")
    assert not folder.startswith((".", "-"))
    assert len(folder) <= MAX_NAME_LENGTH
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", folder)  # valid Docker volume name


def test_no_two_usernames_share_a_folder():
    names = set(HOSTILE)
    # plus every short name over a small alphabet that includes the escape characters
    alphabet = "aA-._@/"
    for length in range(1, 4):
        names.update("".join(p) for p in itertools.product(alphabet, repeat=length))
    folders = {}
    for name in names:
        folder = user_folder_name(name)
        assert folders.setdefault(folder, name) == name, (name, folders[folder])


def test_safe_names_are_kept_and_escaped_names_stay_readable():
    assert user_folder_name("alice") == "alice"
    assert user_folder_name("jo.smith_2") == "jo.smith_2"
    assert user_folder_name("Alice").startswith("alice--")
    assert user_folder_name("user@example.com").startswith("user-example-com--")
    assert user_folder_name("日本語").startswith("user--")


def test_a_name_shaped_like_an_escaped_one_is_escaped_itself():
    escaped = user_folder_name("Alice")
    assert user_folder_name(escaped) != escaped


def test_stable_across_calls():
    assert user_folder_name("Émilie@Lab") == user_folder_name("Émilie@Lab")


def test_too_short_limit_is_refused():
    with pytest.raises(ValueError, match="max_length"):
        user_folder_name("alice", max_length=8)


# --- finding 4 of the security review: object names that collided ---------------------


@pytest.mark.security
def test_a_named_server_cannot_take_another_users_lab_name():
    from labhub.lab.names import lab_object_name

    victim = lab_object_name("labhub", "josé")
    # the old rule was {prefix}-{folder}-{servername}: "jose" + the digest in josé's folder name
    digest = user_folder_name("josé").split("--", 1)[1]
    for servername in (digest, "-" + digest, user_folder_name("josé")):
        assert lab_object_name("labhub", "jose", servername) != victim


@pytest.mark.security
@pytest.mark.parametrize("user", ["x", "a-b", "Zoë", "x" * 60])
def test_a_folder_helper_is_never_named_like_a_lab(user):
    from labhub.lab.names import folder_helper_name, lab_object_name

    helper = folder_helper_name(lab_object_name("labhub", user))
    labs = {lab_object_name("labhub", user + suffix) for suffix in ("", "-folder", "_folder")}
    labs.add(lab_object_name("labhub", "folder-" + user))
    assert helper not in labs
