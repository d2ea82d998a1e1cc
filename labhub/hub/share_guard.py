"""The hub handlers that hold sharing to the owner's teams: JupyterHub's own, plus the team rule."""

from __future__ import annotations

from typing import Any

from jupyterhub.apihandlers.shares import ServerShareAPIHandler, ServerShareCodeAPIHandler
from jupyterhub.apihandlers.users import UserListAPIHandler
from jupyterhub.scopes import Scope, needs_scope
from tornado import web

from labhub.hub.sharing import SHARE_CODE_REFUSAL, narrowed_list_scope, share_refusal


def _group_names(user: Any) -> list[str]:
    return [group.name for group in user.groups]


def _narrow_list(handler: Any, scope: str) -> None:
    """Limit a non-admin user's ``scope`` (list:users) to themselves and their teammates."""
    user = handler.current_user
    if user is None or getattr(user, "kind", "") != "user" or user.admin:
        return  # services and admins list everyone, as JupyterHub lets them
    current = handler.parsed_scopes.get(scope)
    if current is None:
        return  # no list scope at all: JupyterHub refuses the request itself
    narrowed = narrowed_list_scope(
        None if current == Scope.ALL else current, user.name, _group_names(user)
    )
    # the same (hashable, cached) mapping type JupyterHub parsed, with one filter narrowed
    handler.parsed_scopes = type(handler.parsed_scopes)({**handler.parsed_scopes, scope: narrowed})


class TeamUserListHandler(UserListAPIHandler):
    """``GET /hub/api/users``: a user lists themselves and the members of their groups."""

    async def prepare(self) -> None:
        await super().prepare()
        _narrow_list(self, "list:users")


class TeamShareHandler(ServerShareAPIHandler):
    """``/hub/api/shares/{owner}/{server}``: a share outside the owner's groups, or with a group, is a 403."""

    @needs_scope("shares")
    async def post(self, user_name: str, server_name: str | None = None) -> None:
        refusal = self._team_refusal(user_name)
        if refusal:
            self.log.warning("labhub: share refused: %s", refusal)
            raise web.HTTPError(403, refusal)
        await super().post(user_name, server_name)

    def _team_refusal(self, owner_name: str) -> str | None:
        """The team rule's sentence, or None; a malformed request is left to JupyterHub's checks."""
        model = self.get_json_body() or {}
        if not isinstance(model, dict):
            return None
        user, group = model.get("user"), model.get("group")
        owner = self.find_user(owner_name)
        if owner is None or not isinstance(user or group, str) or (user and group):
            return None
        if group:
            return share_refusal(owner.name, _group_names(owner), group=group)
        guest = self.find_user(user)
        if guest is None:
            return None  # JupyterHub answers "No such user"
        return share_refusal(
            owner.name, _group_names(owner), user=guest.name, user_groups=_group_names(guest)
        )


class TeamShareCodeHandler(ServerShareCodeAPIHandler):
    """``/hub/api/share-codes/{owner}/{server}``: no new codes, since anyone holding one gets in."""

    @needs_scope("shares")
    async def post(self, user_name: str, server_name: str | None = None) -> None:
        raise web.HTTPError(403, SHARE_CODE_REFUSAL)
