"""Team folders: which of a user's hub groups get one, its host folder and its mount (pure: no daemon, no disk).

Every lab runs as the same uid, so what a lab can reach is exactly what is mounted
into it: a team's folder is mounted into the labs of that team's members and no
other. The host folder is ``{lab_root}/teams/<safe name>``, named by
:func:`labhub.lab.names.user_folder_name` (injective: two groups never share a
folder); inside the lab it appears as ``teams/<group name>`` beside ``work``, so
people read their team's own name. A group name that cannot be a folder name in the
lab is refused with one sentence, and the lab starts without that folder.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from labhub.hub.options import FALSE_WORDS, TRUE_WORDS
from labhub.lab.mounts import bind_mount
from labhub.lab.names import user_folder_name

#: The folder under ``lab_root`` that holds one folder per team.
TEAMS_FOLDER = "teams"
#: Longest file name the lab's filesystems take, in UTF-8 bytes (NAME_MAX).
MAX_FOLDER_NAME_BYTES = 255
#: Unicode categories a folder name shown to people must not hold: controls, invisible
#: format characters (zero-width, direction overrides: a look-alike of another team's
#: folder), surrogates, line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def team_patterns(value: Any) -> tuple[str, ...]:
    """The ``team_folders`` setting as patterns: True is every group, False none, a list as given."""
    if value is True:
        return ("*",)
    if value is False or value is None:
        return ()
    if isinstance(value, str):
        raise ValueError(
            f"team_folders must be True, False or a list of group names, not the text {value!r}."
        )
    patterns = tuple(value)
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(
                f"team_folders holds {pattern!r}; each entry must be a group name or a "
                "shell-style pattern such as 'team-*'."
            )
    return patterns


def team_folders_value(option: Any) -> bool | list[str]:
    """configure()'s ``team_folders`` as the trait takes it: ``LABHUB_TEAM_FOLDERS=true`` is True."""
    if isinstance(option, bool):
        return option
    if isinstance(option, str):
        option = [option]
    names = [str(name).strip() for name in option]
    if len(names) == 1 and names[0].lower() in TRUE_WORDS:
        return True
    if len(names) == 1 and names[0].lower() in FALSE_WORDS:
        return False
    team_patterns(names)  # a wrong entry stops the hub with the trait's sentence
    return names


def selected_groups(patterns: Sequence[str], groups: Iterable[str]) -> list[str]:
    """The groups matched by a pattern (case-sensitive, like hub group names), sorted, no repeats."""
    if not patterns:
        return []
    return sorted(
        {group for group in groups if any(fnmatch.fnmatchcase(group, p) for p in patterns)}
    )


def refusal(group: str) -> str | None:
    """One sentence saying why ``group`` cannot be a folder name in the lab; None when it can."""
    reason = None
    if not group or not group.strip():
        reason = "it is blank"
    elif group != group.strip():
        reason = "it starts or ends with a blank"
    elif "/" in group:
        reason = "it contains a '/'"
    elif group.startswith("."):
        # Jupyter Server hides and refuses dot folders: the team could not open it
        reason = "it starts with a '.'"
    elif any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in group):
        reason = "it contains a control or invisible character"
    elif len(group.encode("utf-8")) > MAX_FOLDER_NAME_BYTES:
        reason = f"it is longer than {MAX_FOLDER_NAME_BYTES} bytes"
    if reason is None:
        return None
    return (
        f"Group {group!r} gets no team folder because {reason}; "
        "ask the lab admin to rename the group."
    )


@dataclass(frozen=True)
class TeamPlan:
    """The teams whose folders a lab gets, and the groups refused with their one sentence."""

    teams: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()


def plan_teams(patterns: Sequence[str], groups: Iterable[str]) -> TeamPlan:
    """Which of ``groups`` get a team folder under ``patterns``, and which are refused, and why."""
    teams, refused = [], []
    for group in selected_groups(patterns, groups):
        sentence = refusal(group)
        if sentence is None:
            teams.append(group)
        else:
            refused.append((group, sentence))
    return TeamPlan(tuple(teams), tuple(refused))


def teams_root(lab_root: str) -> str:
    """The host folder holding every team's folder: ``{lab_root}/teams``."""
    return os.path.join(lab_root, TEAMS_FOLDER)


def team_folder(lab_root: str, group: str) -> str:
    """The host folder of ``group``: its safe, injective name under :func:`teams_root`."""
    return os.path.join(teams_root(lab_root), user_folder_name(group))


def team_mount_path(personal_mount_path: str, group: str) -> str:
    """Where ``group``'s folder appears in the lab: ``teams/<group>`` beside the personal ``work``."""
    return posixpath.join(posixpath.dirname(personal_mount_path), TEAMS_FOLDER, group)


def team_mounts(
    lab_root: str, personal_mount_path: str, teams: Sequence[str]
) -> list[dict[str, Any]]:
    """The read-write bind mounts of ``teams`` (each accepted by :func:`refusal`)."""
    return [
        bind_mount(team_folder(lab_root, group), team_mount_path(personal_mount_path, group))
        for group in teams
    ]
