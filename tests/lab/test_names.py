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


# --- second review, finding 5a: every object a hub names, disjoint ----------------------

POOL_SHAPED = ["pool-x", "pool-0123456789ab", "pool--0123456789ab", "-pool-x", "pool", "x_folder"]
PREFIXES = ["labhub", "labhub-ab12cd", "lab_hub"]


def _kind(prefix: str, name: str) -> set[str]:
    """What a name is by its shape alone: the argument of labhub.lab.names, as a check."""
    from labhub.lab.names import is_pool_container_name

    head = prefix.split("-", 1)[0]
    kinds = set()
    after = name[len(prefix) + 1 : len(prefix) + 2]
    if name.startswith(prefix + "-") and after.isascii() and after.isalnum():
        kinds.add("lab")
    if is_pool_container_name(prefix, name):
        kinds.add("pool")
    if name.startswith(head + "_folder-"):
        kinds.add("helper")
    return kinds


@pytest.mark.security
@pytest.mark.parametrize("prefix", PREFIXES)
def test_no_lab_is_named_like_a_pool_container_or_a_folder_helper(prefix):
    from labhub.lab.names import (
        folder_helper_name,
        is_legacy_pool_container_name,
        is_pool_container_name,
        lab_object_name,
        pool_container_name,
    )

    slots = ["0123456789ab", "000000000000", "ffffffffffff"]
    pools = {pool_container_name(prefix, slot) for slot in slots}
    labs, helpers = set(), set()
    for user in [*HOSTILE, *POOL_SHAPED, *(f"pool-{slot}" for slot in slots)]:
        for server in ("", "x", "pool", "0123456789ab"):
            lab = lab_object_name(prefix, user, server)
            labs.add(lab)
            helpers.add(folder_helper_name(lab))
            assert _kind(prefix, lab) == {"lab"}, (user, server, lab)
            assert not is_pool_container_name(prefix, lab)
            # an old-format name counts only with its own slot label, which a lab never has
            assert not is_legacy_pool_container_name(prefix, lab, "fedcba987654")
    for pool in pools:
        assert _kind(prefix, pool) == {"pool"}
    for helper in helpers:
        assert _kind(prefix, helper) == {"helper"}
    assert not labs & pools and not labs & helpers and not pools & helpers


@pytest.mark.security
def test_pool_names_are_recognised_exactly():
    from labhub.lab.names import is_pool_container_name, pool_container_name

    name = pool_container_name("labhub", "0123456789ab")
    assert name == "labhub--pool-0123456789ab"
    assert is_pool_container_name("labhub", name)
    assert is_pool_container_name("labhub", "/" + name)  # as the engine lists it
    for other in (
        "labhub-pool-0123456789ab",  # user pool-0123456789ab's lab (and the old pool format)
        "labhub-pool-x",
        name + "0",
        name[:-1],
        "labhub--pool-0123456789AB",
        "labhub-x--pool-0123456789ab",
    ):
        assert not is_pool_container_name("labhub", other), other
    with pytest.raises(ValueError, match="slot"):
        pool_container_name("labhub", "x")


def test_cifs_volume_names_come_from_the_naming_module_and_stay_injective():
    from labhub.lab import mounts
    from labhub.lab.names import cifs_volume_name

    share = mounts.parse_cifs_share(
        {"name": "home-archive", "device": "//s/a", "mount_path": "/mnt/a", "credentials": "guest"}
    )
    assert mounts.cifs_volume_name("labhub", share, "bob") == cifs_volume_name(
        "labhub", "home-archive", "bob"
    )
    assert cifs_volume_name("labhub", "home-archive", "bob") == "labhub-cifs12-home-archive-bob"
    seen = {}
    for share_name in ("home", "home-archive", "h", "home-a"):
        for user in [*HOSTILE, "archive-bob", "bob", "a-bob"]:
            volume = cifs_volume_name("labhub", share_name, user)
            assert seen.setdefault(volume, (share_name, user)) == (share_name, user)
