"""The ``ldap`` mode: LDAP / Active Directory, asked from a thread pool under a deadline."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from tornado import web

from labhub.auth import groups
from labhub.auth.directory import DirectorySettings, DirectoryUnavailable, directory_login
from labhub.auth.login import form_login
from labhub.hub.options import LDAP_TLS_LABELS
from labhub.hub.startup import refuse_to_start, run_hub_startup


def directory_settings(authenticator: Any) -> DirectorySettings:
    """The LDAP traits the worker thread needs, as one immutable value."""
    templates = authenticator.bind_dn_template
    if isinstance(templates, str):
        templates = [templates] if templates else []
    manage_groups = authenticator.manage_groups
    return DirectorySettings(
        servers=tuple(authenticator.server_addresses),
        port=authenticator.server_port,
        tls_strategy=authenticator.tls_strategy.name,
        tls_verify=authenticator.tls_verify,
        tls_ca_file=authenticator.tls_ca_file,
        tls_kwargs=tuple(authenticator.tls_kwargs.items()),
        connect_timeout=authenticator.connect_timeout,
        response_timeout=authenticator.response_timeout,
        bind_dn_templates=tuple(templates),
        lookup_dn=authenticator.lookup_dn,
        search_user=authenticator.lookup_dn_search_user,
        search_password=authenticator.lookup_dn_search_password,
        user_search_base=authenticator.user_search_base,
        user_attribute=authenticator.user_attribute,
        lookup_filter=authenticator.lookup_dn_search_filter,
        lookup_dn_attribute=authenticator.lookup_dn_user_dn_attribute,
        search_filter=authenticator.search_filter,
        group_dns=tuple(
            dict.fromkeys([*(authenticator.allowed_groups or []), *authenticator.admin_groups])
        ),
        group_filter=authenticator.group_search_filter,
        attributes=tuple(authenticator.auth_state_attributes),
        group_search_base=authenticator.group_search_base if manage_groups else "",
        group_member_attribute=authenticator.group_member_attribute if manage_groups else "",
    )


@dataclass(frozen=True)
class DirectoryLoginSettings:
    """What LDAP mode needs, read once from LabAuthenticator's traits."""

    directory: DirectorySettings
    login_timeout: float
    workers: int
    admin_groups: tuple[str, ...] = ()
    store_password: bool = False
    manage_groups: bool = False
    enable_auth_state: bool = False


class DirectoryLogin:
    """LDAP mode (:class:`labhub.auth.login.Login`): the directory decides who is who."""

    # allowed_users / allowed_groups decide who of the directory's people gets in
    allow_config_applies: ClassVar[bool] = True

    def __init__(
        self, settings: DirectoryLoginSettings, log: logging.Logger | logging.LoggerAdapter
    ) -> None:
        self.settings = settings
        self.log = log
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_authenticator(cls, authenticator: Any) -> DirectoryLogin:
        """Read the LDAP traits once."""
        return cls(
            DirectoryLoginSettings(
                directory=directory_settings(authenticator),
                login_timeout=authenticator.login_timeout,
                workers=authenticator.ldap_workers,
                admin_groups=tuple(authenticator.admin_groups),
                store_password=authenticator.store_password,
                manage_groups=authenticator.manage_groups,
                enable_auth_state=authenticator.enable_auth_state,
            ),
            authenticator.log,
        )

    # --- start-up ------------------------------------------------------------

    def check_at_start(self, app: Any) -> None:
        """The directory settings are complete; with manage_groups, the profiles' groups exist."""
        self._check_settings()
        if app is not None and self.settings.manage_groups:
            # idempotent: the lab spawner it checked, whoever ran the start-up first
            spawner = run_hub_startup(app)
            if spawner is not None:
                self._check_profile_groups(spawner)

    def _check_settings(self) -> None:
        d = self.settings.directory
        if not d.servers:
            refuse_to_start(
                self.log,
                "LDAP mode needs a server: set LabAuthenticator.server_address or server_addresses.",
            )
        if not d.lookup_dn and not d.bind_dn_templates:
            refuse_to_start(
                self.log,
                "LDAP mode needs bind_dn_template, or lookup_dn = True with user_search_base and user_attribute.",
            )
        if d.lookup_dn and not (d.user_search_base and d.user_attribute):
            refuse_to_start(self.log, "lookup_dn needs user_search_base and user_attribute.")
        if d.tls_ca_file and not os.path.isfile(d.tls_ca_file):
            refuse_to_start(self.log, f"tls_ca_file {d.tls_ca_file} does not exist.")
        if self.settings.store_password:
            from jupyterhub.crypto import CryptKeeper

            if not self.settings.enable_auth_state or not CryptKeeper.instance().keys:
                refuse_to_start(
                    self.log,
                    "store_password needs c.Authenticator.enable_auth_state = True and a JUPYTERHUB_CRYPT_KEY, "
                    "so passwords are stored encrypted.",
                )
        verified = "certificate verified" if d.tls_verify else "certificate NOT verified"
        if not d.tls_verify or d.tls_strategy == "insecure":
            self.log.warning(
                "labhub: LDAP without a verified TLS connection: passwords can be read on the network"
            )
        self.log.info(
            "labhub: authentication mode ldap (servers %s; %s, %s; timeout %.0f s)",
            ", ".join(d.servers),
            LDAP_TLS_LABELS[d.tls_strategy],
            verified,
            self.settings.login_timeout,
        )

    def _check_profile_groups(self, spawner: Any) -> None:
        """Every group a profile allows must exist in the directory; one sentence otherwise."""
        d = self.settings.directory
        if not d.group_search_base and not d.group_member_attribute:
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
            missing = groups.missing_groups(d, list(wanted))
        except DirectoryUnavailable as err:
            self.log.warning(
                "labhub: could not check the profiles' groups in the directory: %s", err
            )
            return
        if missing:
            refuse_to_start(
                self.log,
                f"Profile {wanted[missing[0]]!r} allows group {missing[0]!r}, which the directory "
                f"does not have under {d.group_search_base}; fix allowed_groups or the group.",
            )

    # --- login ------------------------------------------------------------

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        """Ask the directory in a worker thread; HTTP 503 when it does not answer in time."""
        login = form_login(data, self.log)
        if login is None:
            return None
        password = data.get("password") or ""
        if not password.strip():
            self.log.warning("Login of %r refused: empty password", login.user)
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.settings.workers, thread_name_prefix="labhub-ldap"
            )
        timeout = self.settings.login_timeout
        attempt = asyncio.get_running_loop().run_in_executor(
            self._executor, directory_login, self.settings.directory, login.user, password
        )
        try:
            user = await asyncio.wait_for(attempt, timeout)
        except (asyncio.TimeoutError, DirectoryUnavailable) as err:
            reason = (
                f"no answer within {timeout:.0f} s"
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
        auth_state: dict[str, Any] = {
            "dn": user.dn,
            "login_name": user.login_name,
            "domain": login.domain,
            "ldap_groups": user.groups,
            "user_attributes": user.attributes,
        }
        if self.settings.store_password:
            auth_state["password"] = password
        model: dict[str, Any] = {"name": login.user, "auth_state": auth_state}
        if self.settings.manage_groups:
            model["groups"] = user.group_names
        if self.settings.admin_groups:
            # read at every login: leaving the group removes admin rights at the next one
            model["admin"] = bool(set(user.groups) & set(self.settings.admin_groups))
        self.log.info(
            "Login of %r accepted (groups: %s)", login.user, ", ".join(user.groups) or "none"
        )
        return model

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool | None:
        """Admins always get in; everyone else by the allow settings (the base class rule)."""
        if auth_model and auth_model.get("admin"):
            return True
        return None
