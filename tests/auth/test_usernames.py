"""labhub.auth.usernames: what a person types becomes one lab username, or a clear refusal."""

from __future__ import annotations

import pytest

from labhub.auth.usernames import LoginName, LoginRefused, split_login


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("alice", LoginName("alice")),
        ("  Alice ", LoginName("alice")),
        ("CORP\\Alice", LoginName("alice", "CORP")),
        ("alice@corp.example", LoginName("alice", "corp.example")),
        ("ALICE@CORP.EXAMPLE", LoginName("alice", "CORP.EXAMPLE")),
        ("admin)(|(uid=*", LoginName("admin)(|(uid=*")),
        ("*", LoginName("*")),
    ],
)
def test_split_login(typed, expected):
    assert split_login(typed) == expected


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("nul\x00byte", "control character"),
        ("new\nline", "control character"),
        ("x" * 257, "longer than 256"),
        ("CORP\\", "not of the form"),
        ("a\\b\\c", "not of the form"),
        ("@corp", "not of the form"),
        ("a@b@c", "not of the form"),
    ],
)
def test_refused_logins(typed, reason):
    with pytest.raises(LoginRefused, match=reason):
        split_login(typed)
