"""The ``dummy`` mode: any username with one shared password, on a hub only this machine can reach."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlparse

from labhub.auth.login import form_login
from labhub.hub.startup import refuse_to_start


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


@dataclass(frozen=True)
class DevelopmentSettings:
    """What dummy mode needs, read once from LabAuthenticator's traits."""

    password: str = field(repr=False)
    allow_non_loopback: bool = False
    manage_groups: bool = False


class DevelopmentLogin:
    """Dummy mode (:class:`labhub.auth.login.Login`): for a laptop or a demo, never production."""

    # any username gets in: allowed_users / allowed_groups play no part
    allow_config_applies: ClassVar[bool] = False

    def __init__(
        self, settings: DevelopmentSettings, log: logging.Logger | logging.LoggerAdapter
    ) -> None:
        self.settings = settings
        self.log = log

    @classmethod
    def from_authenticator(cls, authenticator: Any) -> DevelopmentLogin:
        """Read the dummy_* traits (and manage_groups) once."""
        return cls(
            DevelopmentSettings(
                password=authenticator.dummy_password,
                allow_non_loopback=authenticator.dummy_allow_non_loopback,
                manage_groups=authenticator.manage_groups,
            ),
            authenticator.log,
        )

    def check_at_start(self, app: Any) -> None:
        """A password is set, and the hub listens on loopback unless the config says otherwise."""
        if not self.settings.password:
            refuse_to_start(
                self.log,
                "Dummy mode needs a password: set LabAuthenticator.dummy_password or LABHUB_DUMMY_PASSWORD.",
            )
        bind_url = getattr(app, "bind_url", "") or ""
        if bind_url and not is_loopback_bind(bind_url) and not self.settings.allow_non_loopback:
            refuse_to_start(
                self.log,
                f"Dummy mode refuses to serve {bind_url} beyond this machine; bind the hub to "
                "127.0.0.1, or set LabAuthenticator.dummy_allow_non_loopback = True if you really mean it.",
            )
        self._check_hub_listener(app)
        where = "loopback only" if is_loopback_bind(bind_url) else f"{bind_url} (NOT loopback)"
        self.log.warning(
            "labhub: authentication mode dummy (shared password, %s); not for production", where
        )

    def _check_hub_listener(self, app: Any) -> None:
        """The hub's own port serves the login form too: loopback or the labs' own gateway only."""
        if app is None or self.settings.allow_non_loopback:
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

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        """Any well-formed username with the shared password."""
        login = form_login(data, self.log)
        if login is None:
            return None
        password = data.get("password") or ""
        if self.settings.password and hmac.compare_digest(
            password.encode(), self.settings.password.encode()
        ):
            # no directory: groups stay as the admin set them (None leaves them alone)
            return {"name": login.user, **({"groups": None} if self.settings.manage_groups else {})}
        self.log.warning("Login of %r refused: wrong password (dummy mode)", login.user)
        return None

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool | None:
        """Everyone who knows the password: development has no allow list."""
        return True
