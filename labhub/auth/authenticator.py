"""LabAuthenticator: the one class admins name; it delegates to the login of the configured mode."""

from __future__ import annotations

import os
from typing import Any

from ldapauthenticator import LDAPAuthenticator
from traitlets import Bool, Float, Int, List, Unicode, default, validate

from labhub.auth.development import DevelopmentLogin
from labhub.auth.directory_login import DirectoryLogin
from labhub.auth.login import Login
from labhub.hub.options import (
    BY_NAME,
    DEFAULT_LDAP_CONNECT_TIMEOUT,
    DEFAULT_LDAP_RESPONSE_TIMEOUT,
    DUMMY,
    LDAP,
    OptionError,
    auth_mode,
)
from labhub.hub.startup import refuse_to_start, run_hub_startup

#: One login class per mode (:class:`labhub.auth.login.Login`); a new mode is a class and a line here.
LOGINS: dict[str, type[Login]] = {DUMMY: DevelopmentLogin, LDAP: DirectoryLogin}


class LabAuthenticator(LDAPAuthenticator):
    """One authenticator for the lab: ``mode = "ldap"`` or ``mode = "dummy"``.

    It holds every trait and delegates the work to one login object of its mode
    (``LOGINS``: ``DevelopmentLogin`` for dummy, ``DirectoryLogin`` for ldap), which
    reads the traits it needs once. In LDAP mode every LDAP trait of
    jupyterhub-ldapauthenticator applies, and the directory is asked from a thread
    pool under a deadline, with failover across ``server_addresses``, verified TLS,
    escaped input and admin groups.
    """

    # Unicode, not Enum: an Enum refuses a wrong mode with a traceback before _valid_mode runs
    mode = Unicode(
        config=True,
        help="""``ldap`` (production: LDAP or Active Directory) or ``dummy`` (development:
        any username, the one ``dummy_password``). Defaults to the environment:
        ``LABHUB_AUTH_MODE``, else ``DEV_MODE`` set to 1/true/yes/on for dummy, else
        ``ldap`` (:func:`labhub.hub.options.auth_mode`, the rule configure() and ``labhub
        check`` use too).""",
    )

    @default("mode")
    def _default_mode(self) -> str:
        try:
            return auth_mode(None, os.environ)
        except OptionError as err:
            refuse_to_start(self.log, str(err))
            raise  # not reached: refuse_to_start stops the hub

    @validate("mode")
    def _valid_mode(self, proposal: Any) -> str:
        # checked while JupyterHub builds the authenticator: a TraitError there prints a traceback
        try:
            return auth_mode(proposal.value, os.environ)
        except OptionError as err:
            refuse_to_start(self.log, str(err))
            raise  # not reached: refuse_to_start stops the hub

    def _require_either_lookup_dn_or_bind_dn_template(self, change: Any) -> None:
        """Replaces the stock check, which raises mid-construction with a traceback.

        The same rule is checked at start-up by ``DirectoryLogin.check_at_start``, in one
        sentence, and only in LDAP mode (dummy mode needs neither setting).
        """

    dummy_password = Unicode(
        config=True,
        help="""The one password of dummy mode (any username). Required: dummy mode with
        no password refuses to start. Also read from ``LABHUB_DUMMY_PASSWORD``.""",
    )

    @default("dummy_password")
    def _default_dummy_password(self) -> str:
        return os.environ.get(BY_NAME["dummy_password"].env, "")

    dummy_allow_non_loopback = Bool(
        False,
        config=True,
        help="""Let dummy mode run on a hub that listens beyond loopback. Dummy mode lets
        anyone who knows one shared password in; by default it refuses to start unless
        the hub listens on 127.0.0.1 / ::1 / localhost only. Deliberately not read from
        the environment: only a line in the config file can turn this on.""",
    )

    server_addresses = List(
        Unicode(),
        config=True,
        help="""LDAP servers tried in order (``host`` or ``host:port``); the next one is
        asked only when one does not answer. Defaults to ``[server_address]``.""",
    )

    @default("server_addresses")
    def _default_servers(self) -> list[str]:
        return [self.server_address] if self.server_address else []

    connect_timeout = Float(
        DEFAULT_LDAP_CONNECT_TIMEOUT,
        config=True,
        help="Seconds to wait for a TCP (and TLS) connection to one LDAP server before trying the next.",
    )
    response_timeout = Float(
        DEFAULT_LDAP_RESPONSE_TIMEOUT,
        config=True,
        help="Seconds to wait for each LDAP answer (bind, search) before giving up on that server.",
    )
    login_timeout = Float(
        config=True,
        help="""Overall deadline of one login in seconds; past it the login is refused with
        "directory not answering" while the hub keeps serving everyone else.
        Default: enough for every server to time out once.""",
    )

    @default("login_timeout")
    def _default_login_timeout(self) -> float:
        servers = max(1, len(self.server_addresses))
        return servers * self.connect_timeout + 2 * self.response_timeout

    ldap_workers = Int(
        8,
        config=True,
        help="Threads that talk to the directory; logins beyond this many at once wait their turn.",
    )
    admin_groups = List(
        Unicode(),
        config=True,
        help="""LDAP group DNs whose members are hub admins (checked at every login, so
        leaving the group removes admin rights at the next login).""",
    )
    tls_ca_file = Unicode(
        config=True,
        help="""CA bundle (PEM) that signed the LDAP servers' certificates. Empty: the
        system's trusted CAs.""",
    )
    tls_verify = Bool(
        True,
        config=True,
        help="""Verify the LDAP server's certificate and name (StartTLS and LDAPS). Turning
        this off lets anyone on the network read passwords; it is logged as a warning.""",
    )
    group_search_base = Unicode(
        config=True,
        help="""Where the directory keeps its groups, e.g. ``ou=groups,dc=example,dc=org``.
        Set, every login reads the ``cn`` of each group under it whose members include the
        user (``group_search_filter``: ``member``, ``uniqueMember`` or ``memberUid``) and,
        with ``manage_groups`` (on by default once this is set), makes them the user's
        JupyterHub groups, refreshed at every login. Profiles' ``allowed_groups`` name these.""",
    )
    group_member_attribute = Unicode(
        config=True,
        help="""The user's own attribute that lists their group DNs: ``memberOf`` on Active
        Directory (and OpenLDAP with the memberof overlay). Set, group names (each DN's
        ``cn``) come from it instead of a search under ``group_search_base``.""",
    )

    @default("manage_groups")
    def _default_manage_groups(self) -> bool:
        return bool(self.group_search_base or self.group_member_attribute)

    store_password = Bool(
        False,
        config=True,
        help="""Keep the user's password (and directory login name and domain) in
        auth_state, so the spawner can mount their own Windows share. Needs
        ``c.Authenticator.enable_auth_state = True`` and ``JUPYTERHUB_CRYPT_KEY``; it is
        encrypted at rest by JupyterHub and never logged.""",
    )

    _login: Login | None = None

    @property
    def login(self) -> Login:
        """The login of the configured mode, built on first use (once the config is loaded)."""
        if self._login is None:
            login_class = LOGINS.get(self.mode)
            if login_class is None:
                refuse_to_start(
                    self.log,
                    f"LabAuthenticator.mode {self.mode!r} has no login class; "
                    f"use {' or '.join(repr(mode) for mode in LOGINS)}.",
                )
            self._login = login_class.from_authenticator(self)
        return self._login

    def check_allow_config(self) -> None:
        """Validate the mode's settings when the hub starts; a bad one stops it with one sentence."""
        app = self.parent
        self.login.check_at_start(app)
        if self.login.allow_config_applies:
            super().check_allow_config()
        if app is not None:
            run_hub_startup(app)

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        model = await self.login.authenticate(handler, data)
        if model and model.get("admin") is False and model["name"] in self.admin_users:
            # admin_users is JupyterHub's own list (normalised by the hub after start-up,
            # so read here, not copied into a login): a mode's "no" does not demote them
            model["admin"] = True
        return model

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        verdict = await self.login.check_allowed(username, auth_model)
        if verdict is not None:
            return verdict
        allowed = await super().check_allowed(username, auth_model)
        if not allowed:
            self.log.warning(
                "Login of %r refused: not in allowed_users or allowed_groups", username
            )
        return allowed
