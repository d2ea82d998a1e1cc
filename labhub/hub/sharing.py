"""Sharing a running lab: the scopes that turn on JupyterHub's shares, and the hub-side team rule.

JupyterHub 5+ lets a user grant another user or a group access to their server
(the shares API). jupyter-collaboration's Share entry in the lab calls that API with
the lab's own token, and lists the users the hub lets that token list.
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
SHARE_SCOPES = ("shares!user", "read:users:name", "list:users")
#: Names a lab's Share entry reads to list teammates; the hub narrows the list to one's teams.
#: No group scopes: a group share lets no one in (:data:`GROUP_SHARE_REFUSAL`), so none is offered.
NAME_SCOPES = ("read:users:name", "list:users")


class LabSharing(Configurable):
    """Who a user may share a running lab with (``c.LabSharing.*``)."""

    within_teams = Bool(
        True,
        config=True,
        help="""Let a user share a lab only with people who are in one of the owner's
        groups, and list only those in the lab's Share entry. The hub enforces it on its shares API, so no client can go around it. False
        lets anyone share with any user of the hub.""",
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


#: A share code is exchanged by whoever holds it, so it cannot be held to the owner's teams.
SHARE_CODE_REFUSAL = (
    "Share codes let in whoever holds them, so with share_within_teams a lab is shared with "
    "a person or a group by name."
)


#: JupyterHub (6.1) counts a group's shares for a member's own session, not for the tokens a
#: lab checks (``jupyterhub.scopes.get_scopes_for`` reads ``shared_with_me``, not groups').
GROUP_SHARE_REFUSAL = (
    "A share with a group lets none of its members into the lab (JupyterHub checks only "
    "shares with a person when a lab checks a visitor), so share it with each person by name."
)


def share_refusal(
    owner: str,
    owner_groups: Iterable[str],
    *,
    user: str | None = None,
    user_groups: Iterable[str] = (),
    group: str | None = None,
) -> str | None:
    """One sentence refusing a share of ``owner``'s lab outside their teams; None when allowed.

    A group share is always refused: it would show as access while letting no one in.
    """
    if group is not None:
        return GROUP_SHARE_REFUSAL
    if user is None or user == owner or set(owner_groups) & set(user_groups):
        return None
    return f"{owner}'s lab can be shared only with people in one of their groups, and {user} is in none."


def narrowed_list_scope(
    current: dict | None, me: str, my_groups: Iterable[str]
) -> dict[str, frozenset[str]]:
    """A ``list:users`` filter for ``me``: themselves and the members of their groups.

    ``current`` is the filter JupyterHub parsed from the requester's scopes, None
    when unfiltered; a filter the requester already has is kept as it is.
    """
    if current is not None:
        return current
    return {"user": frozenset({me}), "group": frozenset(my_groups)}


def guard_handlers() -> list[tuple[str, type]]:
    """The hub handlers that hold shares, share codes and the user list to the owner's teams.

    They take the place of JupyterHub's own for the same URLs (an authenticator's
    handlers come first), and only add the team rule to them.
    """
    from labhub.hub.share_guard import TeamShareCodeHandler, TeamShareHandler, TeamUserListHandler

    return [
        (r"/api/shares/([^/]+)/([^/]*)", TeamShareHandler),
        (r"/api/share-codes/([^/]+)/([^/]*)", TeamShareCodeHandler),
        (r"/api/users", TeamUserListHandler),
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
