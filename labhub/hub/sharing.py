"""Sharing a running lab: the scopes that turn on JupyterHub's shares, and the hub-side team rule.

JupyterHub 5+ lets a user grant another user or a group access to their server
(the shares API). jupyter-collaboration's Share entry in the lab calls that API with
the lab's own token, and lists the users and groups the hub lets that token list.
labhub grants the scopes it needs (:func:`user_role`, :data:`LAB_TOKEN_SCOPES`), and
with ``LabSharing.within_teams`` the hub itself refuses a share outside the owner's
groups and lists only teammates, whatever client asks (:func:`guard_handlers`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from traitlets import Bool
from traitlets.config import Configurable

#: What every user may do to share: their own servers, and read the names of whom to share with.
SHARE_SCOPES = ("shares!user", "read:users:name", "read:groups:name", "list:users", "list:groups")
#: Names a lab's Share entry reads to list teammates; the hub narrows both lists to one's teams.
NAME_SCOPES = ("read:users:name", "read:groups:name", "list:users", "list:groups")


class LabSharing(Configurable):
    """Who a user may share a running lab with (``c.LabSharing.*``)."""

    within_teams = Bool(
        True,
        config=True,
        help="""Let a user share a lab only with people who are in one of the owner's
        groups, or with one of the owner's groups, and list only those in the lab's Share
        entry. The hub enforces it on its shares API, so no client can go around it. False
        lets anyone share with any user or group of the hub.""",
    )


def user_role(scopes: Iterable[str] = ("self",)) -> dict[str, Any]:
    """JupyterHub's ``user`` role with the share scopes added to ``scopes`` (no duplicates)."""
    merged = list(dict.fromkeys([*scopes, *SHARE_SCOPES]))
    return {"name": "user", "scopes": merged}


#: What a token a lab's visitor gets may do beyond opening it (``Spawner.oauth_client_allowed_scopes``).
#: ``!server`` is the lab the token was issued for: a guest's token, which the owner's lab
#: sees, can never share the guest's own labs (the guest holds no share scope on this lab,
#: so the hub drops it from the guest's token).
LAB_TOKEN_SCOPES = ("shares!server", *NAME_SCOPES)


def share_refusal(
    owner: str,
    owner_groups: Iterable[str],
    *,
    user: str | None = None,
    user_groups: Iterable[str] = (),
    group: str | None = None,
) -> str | None:
    """One sentence refusing a share of ``owner``'s lab outside their teams; None when allowed."""
    teams = set(owner_groups)
    if group is not None:
        if group in teams:
            return None
        return f"{owner}'s lab can be shared only with their own groups, and {group} is not one."
    if user is None or user == owner or teams & set(user_groups):
        return None
    return f"{owner}'s lab can be shared only with people in one of their groups, and {user} is in none."


def narrowed_list_scope(
    current: dict | None, me: str, my_groups: Iterable[str], kind: str
) -> dict[str, frozenset[str]]:
    """A ``list:users`` / ``list:groups`` filter for ``me``: self and teammates, or own groups.

    ``current`` is the filter JupyterHub parsed from the requester's scopes, None
    when unfiltered; a filter the requester already has is kept as it is.
    """
    if current is not None:
        return current
    groups = frozenset(my_groups)
    if kind == "users":
        return {"user": frozenset({me}), "group": groups}
    return {"group": groups}


def guard_handlers() -> list[tuple[str, type]]:
    """The hub handlers that hold shares and name lists to the owner's teams.

    They take the place of JupyterHub's own for the same URLs (an authenticator's
    handlers come first), and only add the team rule to them.
    """
    from labhub.hub.share_guard import TeamGroupListHandler, TeamShareHandler, TeamUserListHandler

    return [
        (r"/api/shares/([^/]+)/([^/]*)", TeamShareHandler),
        (r"/api/users", TeamUserListHandler),
        (r"/api/groups", TeamGroupListHandler),
    ]


def install_share_guard(app: Any) -> bool:
    """Put :func:`guard_handlers` in front of the hub's own, whatever the authenticator.

    JupyterHub registers its authenticator's handlers before its own; this runs at
    start-up, before the hub builds its handlers, so wrapping that one hook is
    enough. Returns whether the guard is on.
    """
    if not LabSharing(config=app.config).within_teams:
        return False
    authenticator = app.authenticator
    if getattr(authenticator, "_labhub_share_guard", False):
        return True
    own = authenticator.get_handlers

    def get_handlers(hub: Any) -> list:
        return [*guard_handlers(), *own(hub)]

    # an instance attribute: the authenticator's class, and other hubs' instances, stay as they are
    authenticator.get_handlers = get_handlers
    authenticator._labhub_share_guard = True
    return True
