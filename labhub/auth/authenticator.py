"""LabAuthenticator: the one class admins name; it delegates to the login of the configured mode."""

from __future__ import annotations

import os
from typing import Any

from jupyterhub.utils import url_path_join
from ldapauthenticator import LDAPAuthenticator
from traitlets import Bool, Float, Int, List, Unicode, default, validate

from labhub.auth.development import DevelopmentLogin
from labhub.auth.directory_login import DirectoryLogin
from labhub.auth.login import Login
from labhub.auth.oidc_login import OidcLogin
from labhub.hub.options import (
    BY_NAME,
    DEFAULT_LDAP_CONNECT_TIMEOUT,
    DEFAULT_LDAP_RESPONSE_TIMEOUT,
    DEFAULT_OIDC_GROUPS_CLAIM,
    DEFAULT_OIDC_PROVIDER_NAME,
    DEFAULT_OIDC_SCOPES,
    DEFAULT_OIDC_USERNAME_CLAIM,
    DUMMY,
    LDAP,
    OIDC,
    OptionError,
    auth_mode,
)
from labhub.hub.startup import refuse_to_start, run_hub_startup

#: One login class per mode (:class:`labhub.auth.login.Login`); a new mode is a class and a line here.
LOGINS: dict[str, type[Login]] = {DUMMY: DevelopmentLogin, LDAP: DirectoryLogin, OIDC: OidcLogin}


class LabAuthenticator(LDAPAuthenticator):
    """One authenticator for the lab: ``mode = "ldap"``, ``"oidc"`` or ``"dummy"``.

    It holds every trait and delegates the work to one login object of its mode
    (``LOGINS``: ``DevelopmentLogin`` for dummy, ``DirectoryLogin`` for ldap,
    ``OidcLogin`` for single sign-on through an OpenID Connect provider), which
    reads the traits it needs once. In LDAP mode every LDAP trait of
    jupyterhub-ldapauthenticator applies, and the directory is asked from a thread
    pool under a deadline, with failover across ``server_addresses``, verified TLS,
    escaped input and admin groups.
    """

    # Unicode, not Enum: an Enum refuses a wrong mode with a traceback before _valid_mode runs
    mode = Unicode(
        config=True,
        help="""``ldap`` (production: LDAP or Active Directory), ``oidc`` (single sign-on
        through an OpenID Connect provider: Keycloak, Entra ID, Google, GitLab, Authentik)
        or ``dummy`` (development: any username, the one ``dummy_password``). Defaults to the environment:
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
        # the provider's groups claim is read at every login: it is where OIDC groups come from
        return bool(self.group_search_base or self.group_member_attribute or self.mode == OIDC)

    oidc_issuer = Unicode(
        config=True,
        help="""The OpenID provider's issuer URL (oidc mode), e.g.
        ``https://keycloak.example.org/realms/lab``. Its endpoints and signing keys come
        from ``{issuer}/.well-known/openid-configuration``; https only, except on loopback.
        Also read from ``LABHUB_OIDC_ISSUER`` through ``labhub.configure()``.""",
    )
    oidc_client_id = Unicode(config=True, help="This hub's client id at the OpenID provider.")
    oidc_client_secret = Unicode(
        config=True,
        help="""This hub's client secret at the OpenID provider. A secret: keep it in
        ``.env`` (``LABHUB_OIDC_CLIENT_SECRET``); it is never logged.""",
    )
    oidc_scopes = List(
        Unicode(),
        list(DEFAULT_OIDC_SCOPES),
        config=True,
        help="""Scopes asked of the provider; ``openid`` is required. Add the one that
        carries the groups claim if the provider needs it (``groups`` on some).""",
    )
    oidc_username_claim = Unicode(
        DEFAULT_OIDC_USERNAME_CLAIM,
        config=True,
        help="""The claim that gives the hub username, normalised like an LDAP login
        (``user@domain`` and ``DOMAIN\\user`` keep the user part, lower case). ``email``
        counts only when the provider says ``email_verified``. A hub user is bound to the
        provider's ``sub`` at the first login; another account with the same username is
        refused.""",
    )
    oidc_groups_claim = Unicode(
        DEFAULT_OIDC_GROUPS_CLAIM,
        config=True,
        help="""The claim listing the user's groups; they become the user's JupyterHub groups
        at every login (``manage_groups``), so profiles' ``allowed_groups`` name them. A
        login whose answer has no such claim is refused, naming it.""",
    )
    oidc_allowed_groups = List(
        Unicode(),
        config=True,
        help="""Provider groups whose members may log in (admins always may). Empty:
        ``allowed_users`` / ``allow_all`` decide.""",
    )
    oidc_admin_groups = List(
        Unicode(),
        config=True,
        help="""Provider groups whose members are hub admins, checked at every login (leaving
        the group removes admin rights at the next login).""",
    )
    oidc_callback_url = Unicode(
        config=True,
        help="""Where the provider sends users back. Default:
        ``{JupyterHub.public_url}/hub/oauth_callback``; register that URL at the provider.""",
    )

    login_service = Unicode(
        config=True,
        help="""The provider's name on the login page's button, "Sign in with <name>" (oidc
        mode; default "single sign-on"). Other modes keep the username and password form.""",
    )

    @default("login_service")
    def _default_login_service(self) -> str:
        # the "Sign in with <provider>" button; other modes keep the username/password form
        return DEFAULT_OIDC_PROVIDER_NAME if self.mode == OIDC else ""

    def login_url(self, base_url: str) -> str:
        return url_path_join(base_url, "oauth_login" if self.mode == OIDC else "login")

    def get_handlers(self, app: Any) -> list[tuple[str, type]]:
        handlers = getattr(self.login, "handlers", None)  # only modes with pages of their own
        return handlers(app) if handlers else super().get_handlers(app)

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
