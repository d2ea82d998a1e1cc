"""LabAuthenticator: LDAP / Active Directory in production, a shared-password login in development."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import ldap3
from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets import Bool, Float, Int, List, Unicode, default, validate

from labhub.auth import groups
from labhub.auth.directory import DirectorySettings, DirectoryUnavailable, directory_login
from labhub.auth.usernames import LoginRefused, split_login
from labhub.hub.options import BY_NAME, DUMMY, OptionError, auth_mode
from labhub.hub.startup import refuse_to_start, run_hub_startup


def is_loopback_bind(bind_url: str) -> bool:
    """True when a hub bound to ``bind_url`` is reachable from this machine only."""
    host = urlparse(bind_url).hostname
    if not host:
        return False  # empty host: every interface
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LabAuthenticator(LDAPAuthenticator):
    """One authenticator for the lab: ``mode = "ldap"`` or ``mode = "dummy"``.

    In LDAP mode every LDAP trait of jupyterhub-ldapauthenticator applies, and the
    directory is asked from a thread pool under a deadline, with failover across
    ``server_addresses``, verified TLS, escaped input and admin groups.
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

        The same rule is checked at start-up by ``check_allow_config``, in one sentence,
        and only in LDAP mode (dummy mode needs neither setting).
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
        5.0,
        config=True,
        help="Seconds to wait for a TCP (and TLS) connection to one LDAP server before trying the next.",
    )
    response_timeout = Float(
        10.0,
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

    _executor: ThreadPoolExecutor | None = None

    # --- start-up ------------------------------------------------------------

    def check_allow_config(self) -> None:
        """Validate the mode's settings when the hub starts; a bad one stops it with one sentence."""
        app = self.parent
        if self.mode == DUMMY:
            self._check_dummy(app)
        else:
            self._check_ldap()
            super().check_allow_config()
        if app is not None:
            spawner = run_hub_startup(app)
            if spawner is not None and self.mode != DUMMY and self.manage_groups:
                self._check_profile_groups(spawner)

    def _check_dummy(self, app: Any) -> None:
        if not self.dummy_password:
            refuse_to_start(
                self.log,
                "Dummy mode needs a password: set LabAuthenticator.dummy_password or LABHUB_DUMMY_PASSWORD.",
            )
        bind_url = getattr(app, "bind_url", "") or ""
        if bind_url and not is_loopback_bind(bind_url) and not self.dummy_allow_non_loopback:
            refuse_to_start(
                self.log,
                f"Dummy mode refuses to serve {bind_url} beyond this machine; bind the hub to "
                "127.0.0.1, or set LabAuthenticator.dummy_allow_non_loopback = True if you really mean it.",
            )
        self._check_dummy_hub_listener(app)
        where = "loopback only" if is_loopback_bind(bind_url) else f"{bind_url} (NOT loopback)"
        self.log.warning(
            "labhub: authentication mode dummy (shared password, %s); not for production", where
        )

    def _check_dummy_hub_listener(self, app: Any) -> None:
        """The hub's own port serves the login form too: loopback or the labs' own gateway only."""
        if app is None or self.dummy_allow_non_loopback:
            return
        from labhub.engines.network import lab_network_gateway

        hub = getattr(app, "hub", None)
        hub_bind = getattr(hub, "bind_url", "") or f"http://{getattr(app, 'hub_ip', '')}:8081/"
        host = urlparse(hub_bind).hostname or ""
        if is_loopback_bind(hub_bind) or (host and host == lab_network_gateway(app)):
            return
        refuse_to_start(
            self.log,
            f"Dummy mode refuses a hub listening on {hub_bind} (JupyterHub.hub_ip), which other "
            "machines can reach; set hub_ip to 127.0.0.1 or to the labs' network gateway, or set "
            "LabAuthenticator.dummy_allow_non_loopback = True if you really mean it.",
        )

    def _check_ldap(self) -> None:
        if not self.server_addresses:
            refuse_to_start(
                self.log,
                "LDAP mode needs a server: set LabAuthenticator.server_address or server_addresses.",
            )
        if not self.lookup_dn and not self.bind_dn_template:
            refuse_to_start(
                self.log,
                "LDAP mode needs bind_dn_template, or lookup_dn = True with user_search_base and user_attribute.",
            )
        if self.lookup_dn and not (self.user_search_base and self.user_attribute):
            refuse_to_start(self.log, "lookup_dn needs user_search_base and user_attribute.")
        if self.tls_ca_file and not os.path.isfile(self.tls_ca_file):
            refuse_to_start(self.log, f"tls_ca_file {self.tls_ca_file} does not exist.")
        if self.store_password:
            from jupyterhub.crypto import CryptKeeper

            if not self.enable_auth_state or not CryptKeeper.instance().keys:
                refuse_to_start(
                    self.log,
                    "store_password needs c.Authenticator.enable_auth_state = True and a JUPYTERHUB_CRYPT_KEY, "
                    "so passwords are stored encrypted.",
                )
        tls = {"before_bind": "StartTLS", "on_connect": "LDAPS", "insecure": "no TLS"}[
            self.tls_strategy.name
        ]
        verified = "certificate verified" if self.tls_verify else "certificate NOT verified"
        if not self.tls_verify or self.tls_strategy.name == "insecure":
            self.log.warning(
                "labhub: LDAP without a verified TLS connection: passwords can be read on the network"
            )
        self.log.info(
            "labhub: authentication mode ldap (servers %s; %s, %s; timeout %.0f s)",
            ", ".join(self.server_addresses),
            tls,
            verified,
            self.login_timeout,
        )

    def _check_profile_groups(self, spawner: Any) -> None:
        """Every group a profile allows must exist in the directory; one sentence otherwise."""
        if not self.group_search_base and not self.group_member_attribute:
            refuse_to_start(
                self.log,
                "manage_groups needs LabAuthenticator.group_search_base (or group_member_attribute "
                "= 'memberOf' on Active Directory) to read the directory's groups.",
            )
        wanted = {
            group: profile.slug
            for profile in getattr(spawner, "lab_profiles", ())
            for group in profile.allowed_groups or ()
        }
        try:
            missing = groups.missing_groups(self.directory_settings(), list(wanted))
        except DirectoryUnavailable as err:
            self.log.warning(
                "labhub: could not check the profiles' groups in the directory: %s", err
            )
            return
        if missing:
            refuse_to_start(
                self.log,
                f"Profile {wanted[missing[0]]!r} allows group {missing[0]!r}, which the directory "
                f"does not have under {self.group_search_base}; fix allowed_groups or the group.",
            )

    # --- login ------------------------------------------------------------

    def directory_settings(self) -> DirectorySettings:
        """The traits a login needs, as one immutable value handed to the worker thread."""
        tls_options: dict[str, Any] = {
            "validate": ssl.CERT_REQUIRED if self.tls_verify else ssl.CERT_NONE
        }
        if self.tls_ca_file:
            tls_options["ca_certs_file"] = self.tls_ca_file
        tls_options.update(self.tls_kwargs)
        templates = self.bind_dn_template
        if isinstance(templates, str):
            templates = [templates] if templates else []
        return DirectorySettings(
            servers=tuple(self.server_addresses),
            port=self.server_port,
            tls_strategy=self.tls_strategy.name,
            tls=ldap3.Tls(**tls_options),
            connect_timeout=self.connect_timeout,
            response_timeout=self.response_timeout,
            bind_dn_templates=tuple(templates),
            lookup_dn=self.lookup_dn,
            search_user=self.lookup_dn_search_user,
            search_password=self.lookup_dn_search_password,
            user_search_base=self.user_search_base,
            user_attribute=self.user_attribute,
            lookup_filter=self.lookup_dn_search_filter,
            lookup_dn_attribute=self.lookup_dn_user_dn_attribute,
            search_filter=self.search_filter,
            group_dns=tuple(dict.fromkeys([*(self.allowed_groups or []), *self.admin_groups])),
            group_filter=self.group_search_filter,
            attributes=tuple(self.auth_state_attributes),
            group_search_base=self.group_search_base if self.manage_groups else "",
            group_member_attribute=self.group_member_attribute if self.manage_groups else "",
        )

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        try:
            login = split_login(data.get("username", ""))
        except LoginRefused as err:
            self.log.warning("Login refused: %s", err)
            return None
        password = data.get("password") or ""
        if self.mode == DUMMY:
            if self.dummy_password and hmac.compare_digest(
                password.encode(), self.dummy_password.encode()
            ):
                # no directory: groups stay as the admin set them (None leaves them alone)
                return {"name": login.user, **({"groups": None} if self.manage_groups else {})}
            self.log.warning("Login of %r refused: wrong password (dummy mode)", login.user)
            return None
        if not password.strip():
            self.log.warning("Login of %r refused: empty password", login.user)
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.ldap_workers, thread_name_prefix="labhub-ldap")
        loop = asyncio.get_running_loop()
        attempt = loop.run_in_executor(
            self._executor, directory_login, self.directory_settings(), login.user, password
        )
        try:
            user = await asyncio.wait_for(attempt, self.login_timeout)
        except (asyncio.TimeoutError, DirectoryUnavailable) as err:
            reason = (
                f"no answer within {self.login_timeout:.0f} s"
                if isinstance(err, asyncio.TimeoutError)
                else str(err)
            )
            self.log.error(
                "Login of %r refused: the LDAP directory is unavailable (%s)", login.user, reason
            )
            raise web.HTTPError(
                503,
                "The lab's directory (LDAP) is not answering; please try again in a few minutes.",
            ) from None
        if user is None:
            self.log.warning(
                "Login of %r refused: unknown user, wrong password or not matched by search_filter",
                login.user,
            )
            return None
        in_admin_group = bool(set(user.groups) & set(self.admin_groups))
        auth_state: dict[str, Any] = {
            "dn": user.dn,
            "login_name": user.login_name,
            "domain": login.domain,
            "ldap_groups": user.groups,
            "user_attributes": user.attributes,
        }
        if self.store_password:
            auth_state["password"] = password
        model: dict[str, Any] = {"name": login.user, "auth_state": auth_state}
        if self.manage_groups:
            model["groups"] = user.group_names
        if self.admin_groups:
            model["admin"] = in_admin_group or login.user in self.admin_users
        self.log.info(
            "Login of %r accepted (groups: %s)", login.user, ", ".join(user.groups) or "none"
        )
        return model

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        if self.mode == DUMMY:
            return True  # development: any username with the shared password
        if auth_model and auth_model.get("admin"):
            return True
        allowed = await super().check_allowed(username, auth_model)
        if not allowed:
            self.log.warning(
                "Login of %r refused: not in allowed_users or allowed_groups", username
            )
        return allowed
