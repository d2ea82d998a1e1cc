"""What every login mode implements: the interface LabAuthenticator delegates to.

LabAuthenticator is the one class admins name; it keeps every trait and hands the
work to one small login object, chosen by ``mode`` from ``LOGINS`` in
:mod:`labhub.auth.authenticator` and built once, on first use. A new mode is one
class that satisfies :class:`Login` plus one entry in that registry.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Protocol

from labhub.auth.usernames import LoginName, LoginRefused, split_login


class Login(Protocol):
    """One way of logging in (``dummy``, ``ldap``, ...), behind LabAuthenticator.

    ``from_authenticator(authenticator)`` reads the traits the mode needs, once, into
    plain values (a frozen dataclass); the login never reads the authenticator again.

    ``check_at_start(app)``: the mode's start-up checks, run from
    ``LabAuthenticator.check_allow_config`` with the JupyterHub app (None outside a
    hub); a bad setting stops the hub through
    :func:`labhub.hub.startup.refuse_to_start` with one sentence.

    ``authenticate(handler, data)``: the auth model (``name``, optionally ``admin``,
    ``groups``, ``auth_state``) or None for a refused login; an ``admin`` of False is
    lifted to True for names in ``Authenticator.admin_users`` by LabAuthenticator.

    ``check_allowed(username, auth_model)``: True or False to decide here, None to
    defer to the base class rule (``allow_all``, ``allowed_users``, ``allowed_groups``).

    A mode with pages of its own (OIDC: the redirect to the provider and its callback)
    also has ``handlers(app)``, which LabAuthenticator.get_handlers returns instead of
    the stock login form.
    """

    #: True when ``check_allowed`` may defer to the allow settings, so JupyterHub's
    #: start-up warning about none being set applies to this mode
    allow_config_applies: ClassVar[bool]

    @classmethod
    def from_authenticator(cls, authenticator: Any) -> Login: ...

    def check_at_start(self, app: Any) -> None: ...

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None: ...

    async def check_allowed(
        self, username: str, auth_model: dict[str, Any] | None
    ) -> bool | None: ...


def form_login(
    data: dict[str, Any], log: logging.Logger | logging.LoggerAdapter
) -> LoginName | None:
    """The login name typed into the login form, or None (logged) when it cannot be used."""
    try:
        return split_login(data.get("username", ""))
    except LoginRefused as err:
        log.warning("Login refused: %s", err)
        return None
