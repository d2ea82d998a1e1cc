"""Spawn profiles in KubeSpawner's ``profile_list`` shape: parse, check, choose, apply; pure, no I/O.

A profile list is what a z2jh admin already writes (``display_name``, ``slug``,
``description``, ``default``, ``allowed_groups``, ``spawner_override``) plus
``gpus``. Nothing here talks to a daemon, the directory or the hub: the spawner
passes the user's group names in and gets plain values back.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Spawner settings a profile may override; all of them are read by ``describe_lab()``.
OVERRIDE_KEYS = (
    "image",
    "mem_limit",
    "mem_guarantee",
    "cpu_limit",
    "cpu_guarantee",
    "environment",
    "lab_volumes",
    "lab_read_only_volumes",
    "volume_driver_options",
    "extra_create_kwargs",
    "extra_host_config",
    "extra_container_spec",
    "extra_resources_spec",
    "extra_placement_spec",
    "extra_task_spec",
    "placement_constraints",
    "default_url",
)

#: Keys of one profile entry.
PROFILE_KEYS = (
    "display_name",
    "slug",
    "description",
    "default",
    "allowed_groups",
    "spawner_override",
    "gpus",
)

#: The value of ``gpus`` for a lab that shares the GPUs no lab holds alone (see gpus.GpuPool).
SHARED = "shared"

_SLUG = re.compile(r"[a-z0-9]([a-z0-9_.-]*[a-z0-9])?")


class ProfileError(ValueError):
    """A profile list is wrong; the message is one sentence naming the profile."""


class ProfileRefused(ValueError):
    """A user asked for a profile they may not use (``status`` 403) or that does not exist (400)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Profile:
    """One entry of ``profile_list``; ``allowed_groups`` None means everyone."""

    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    allowed_groups: tuple[str, ...] | None = None
    spawner_override: dict[str, Any] = field(default_factory=dict)
    gpus: int | str = 0

    @property
    def exclusive_gpus(self) -> int:
        """How many GPUs this profile's lab holds for itself (0 for none or shared)."""
        return self.gpus if isinstance(self.gpus, int) else 0

    def allows(self, groups: Iterable[str], admin: bool = False) -> bool:
        """True when a user in ``groups`` (or an admin) may start this profile."""
        if admin or self.allowed_groups is None:
            return True
        return bool(set(self.allowed_groups) & set(groups))


def slugify(display_name: str) -> str:
    """KubeSpawner's rule of thumb: a lowercase slug from the display name when none is given."""
    return re.sub(r"[^a-z0-9]+", "-", display_name.lower()).strip("-")


def _name(index: int, raw: Mapping[str, Any]) -> str:
    label = raw.get("slug") or raw.get("display_name")
    return f"profile {label!r}" if label else f"profile #{index + 1}"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_profile(index: int, raw: Any) -> Profile:
    """One checked :class:`Profile` from one ``profile_list`` entry."""
    if not isinstance(raw, Mapping):
        raise ProfileError(f"profile_list entry #{index + 1} must be a dict, not {raw!r}.")
    name = _name(index, raw)
    for key in raw:
        if key not in PROFILE_KEYS:
            hint = (
                " (labhub calls it spawner_override)"
                if key == "kubespawner_override"
                else _did_you_mean(key, PROFILE_KEYS)
            )
            raise ProfileError(f"{name} has an unknown key {key!r}{hint}.")
    display_name = raw.get("display_name")
    if not isinstance(display_name, str) or not display_name.strip():
        raise ProfileError(f"{name} needs a display_name.")
    slug = raw.get("slug") or slugify(display_name)
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise ProfileError(
            f"{name} has slug {slug!r}; use lowercase letters, digits, '-', '_' or '.'."
        )
    groups = raw.get("allowed_groups")
    if groups is not None:
        if isinstance(groups, str) or not all(isinstance(g, str) and g for g in groups):
            raise ProfileError(f"profile {slug!r}: allowed_groups must be a list of group names.")
        groups = tuple(groups)
    override = raw.get("spawner_override") or {}
    if not isinstance(override, Mapping):
        raise ProfileError(f"profile {slug!r}: spawner_override must be a dict.")
    for key in override:
        if key not in OVERRIDE_KEYS:
            raise ProfileError(
                f"profile {slug!r} overrides {key!r}, which a profile cannot set"
                f"{_did_you_mean(key, OVERRIDE_KEYS)}; allowed: {', '.join(OVERRIDE_KEYS)}."
            )
    gpus = raw.get("gpus", 0)
    if gpus != SHARED and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0):
        raise ProfileError(
            f'profile {slug!r}: gpus must be a count (0, 1, 2, ...) or "shared", not {gpus!r}.'
        )
    return Profile(
        slug=slug,
        display_name=display_name,
        description=str(raw.get("description", "")),
        default=bool(raw.get("default", False)),
        allowed_groups=groups,
        spawner_override=dict(override),
        gpus=gpus,
    )


def parse_profile_list(raw: Iterable[Any]) -> tuple[Profile, ...]:
    """Every profile of ``raw``, checked; duplicate slugs and two defaults are refused."""
    profiles = tuple(parse_profile(i, entry) for i, entry in enumerate(raw))
    seen: set[str] = set()
    for profile in profiles:
        if profile.slug in seen:
            raise ProfileError(
                f"Two profiles have the slug {profile.slug!r}; slugs must be unique."
            )
        seen.add(profile.slug)
    defaults = [p.slug for p in profiles if p.default]
    if len(defaults) > 1:
        raise ProfileError(
            f"Profiles {', '.join(map(repr, defaults))} are all marked default; mark one."
        )
    return profiles


def usable_profiles(
    profiles: Iterable[Profile], groups: Iterable[str], admin: bool = False
) -> list[Profile]:
    """The profiles a user in ``groups`` may start, in the admin's order."""
    groups = set(groups)
    return [p for p in profiles if p.allows(groups, admin)]


def default_profile(profiles: list[Profile]) -> Profile | None:
    """The profile marked default, else the first; None for an empty list."""
    return next((p for p in profiles if p.default), profiles[0] if profiles else None)


def choose_profile(
    profiles: tuple[Profile, ...], slug: Any, groups: Iterable[str], admin: bool = False
) -> Profile | None:
    """The profile a spawn uses: ``slug`` if the user may start it, the default without one.

    None when no profiles are configured. Raises :class:`ProfileRefused` for a slug
    that does not exist (400) or belongs to groups the user is not in (403), and
    when the user may start no profile at all (403).
    """
    if not profiles:
        if slug:
            raise ProfileRefused(400, "This hub has no spawn profiles; start without one.")
        return None
    usable = usable_profiles(profiles, groups, admin)
    names = ", ".join(p.slug for p in usable) or "none"
    if slug in (None, ""):
        chosen = default_profile(usable)
        if chosen is None:
            raise ProfileRefused(
                403, "You may not start any lab profile; ask the lab admin to add you to a group."
            )
        return chosen
    found = next((p for p in profiles if p.slug == slug), None)
    if found is None:
        raise ProfileRefused(400, f"There is no profile {str(slug)[:64]!r}; yours: {names}.")
    if found not in usable:
        raise ProfileRefused(403, f"You may not start profile {found.slug!r}; yours: {names}.")
    return found


def overridden_values(current: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a profile gives the spawner: dicts merged over ``current``, others replaced."""
    values = {}
    for key, value in override.items():
        base = current.get(key)
        if isinstance(value, Mapping) and isinstance(base, Mapping):
            values[key] = {**base, **value}
        else:
            values[key] = value
    return values


def options_form(profiles: list[Profile], chosen: str | None = None) -> str:
    """Radio buttons for ``profiles``, the default (or ``chosen``) already checked."""
    selected = chosen if any(p.slug == chosen for p in profiles) else None
    selected = selected or (default_profile(profiles).slug if profiles else None)
    rows = []
    for profile in profiles:
        slug = html.escape(profile.slug, quote=True)
        checked = " checked" if profile.slug == selected else ""
        tag = " (default)" if profile.slug == default_profile(profiles).slug else ""
        gpus = ""
        if profile.gpus == SHARED:
            gpus = " &middot; shared GPUs"
        elif profile.exclusive_gpus:
            gpus = (
                f" &middot; {profile.exclusive_gpus} GPU{'s' if profile.exclusive_gpus > 1 else ''}"
            )
        rows.append(
            f'<div class="form-check labhub-profile">'
            f'<input class="form-check-input" type="radio" name="profile" '
            f'id="profile-{slug}" value="{slug}"{checked}>'
            f'<label class="form-check-label" for="profile-{slug}">'
            f"<strong>{html.escape(profile.display_name)}</strong>{tag}{gpus}"
            f"<br><small>{html.escape(profile.description)}</small></label></div>"
        )
    return "<fieldset><legend>Choose your lab</legend>\n" + "\n".join(rows) + "\n</fieldset>"


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, str]:
    """``{"profile": slug}`` from the form's fields (nothing when none was picked)."""
    values = formdata.get("profile") or []
    return {"profile": values[0]} if values else {}
