"""The ``oidc`` mode: single sign-on through an OpenID Connect provider, on oauthenticator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlparse

import jwt
from jupyterhub.handlers.login import LoginHandler
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler, OAuthLogoutHandler
from tornado import web
from tornado.httpclient import HTTPClientError

from labhub.auth.claims import (
    ClaimsRefused,
    Discovery,
    admin_verdict,
    check_binding,
    discovery_url,
    groups_from_claims,
    parse_discovery,
    subject_of,
    username_from_claims,
)
from labhub.auth.development import is_loopback_bind
from labhub.hub.startup import refuse_to_start

#: a working provider is asked again at most this often (the login page checks it)
RECHECK_SECONDS = 30.0
#: how long the hub waits for the provider's discovery document or keys
FETCH_TIMEOUT = 5.0
#: ID tokens signed with a shared secret or not at all are refused
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


class ProviderUnreachable(RuntimeError):
    """The provider did not answer; the message is one sentence for the login page."""


@dataclass(frozen=True)
class OidcSettings:
    """What OIDC mode needs, read once from LabAuthenticator's traits."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    username_claim: str
    groups_claim: str
    allowed_groups: tuple[str, ...]
    admin_groups: tuple[str, ...]
    provider_name: str
    callback_url: str
    enable_auth_state: bool


def callback_from_public_url(public_url: str) -> str:
    """Where the provider sends users back: ``{public_url}/hub/oauth_callback``."""
    return f"{public_url.rstrip('/')}/hub/oauth_callback" if public_url else ""


def _one_sentence(status: int, message: str) -> web.HTTPError:
    # "%s": a username holding "%" must not be read as a format by tornado
    return web.HTTPError(status, "%s", message)


class OidcLoginPageHandler(LoginHandler):
    """The hub's login page; it says so when the provider cannot be reached."""

    async def _render(self, login_error: str | None = None, username: str | None = None, **kw):
        problem = await self.settings["authenticator"].login.provider_problem()
        return await super()._render(login_error=problem or login_error, username=username, **kw)

    async def post(self) -> None:
        # no password form in this mode: the button sends people to the provider
        raise _one_sentence(400, "Sign in with the button on the login page.")


class OidcRedirectHandler(OAuthLoginHandler):
    """Sends the browser to the provider's login, with state and a PKCE challenge."""

    @property
    def authenticator(self) -> GenericOAuthenticator:
        # the OAuth client holds the endpoints, client id and scopes the redirect needs
        return self.settings["authenticator"].login.client

    async def get(self) -> None:
        problem = await self.settings["authenticator"].login.provider_problem()
        if problem:
            raise _one_sentence(503, problem)
        super().get()


class OidcCallbackHandler(OAuthCallbackHandler):
    """Where the provider sends the browser back; LabAuthenticator logs the user in."""

    def check_state(self) -> None:
        try:
            super().check_state()
        except web.HTTPError:
            raise _one_sentence(
                400,
                "This sign-in answer does not belong to a sign-in started in this browser "
                "(or was used already); start again from the login page.",
            ) from None


class OidcLogin:
    """OIDC mode (:class:`labhub.auth.login.Login`): the provider says who is who.

    oauthenticator's GenericOAuthenticator (``self.client``) does the OAuth: the
    redirect with state and PKCE, the code exchange and the userinfo request. This
    class adds what labhub promises on top: endpoints from discovery, a verified ID
    token, usernames normalised like LDAP's, claims named when missing, and each hub
    user bound to the provider's ``sub`` at first login.
    """

    # allowed_users and allow_all decide when no oidc_allowed_groups are set
    allow_config_applies: ClassVar[bool] = True

    def __init__(self, settings: OidcSettings, log: logging.Logger | logging.LoggerAdapter):
        self.settings = settings
        self.log = log
        # with oidc_allowed_groups the groups decide, and "no allow config" would be a false alarm
        self.allow_config_applies = not settings.allowed_groups
        self.client = GenericOAuthenticator(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            scope=list(settings.scopes),
            enable_pkce=True,
            oauth_callback_url=settings.callback_url,
            login_service=settings.provider_name,
            # who gets in is LabAuthenticator's decision, and the client keeps no state itself
            allow_all=True,
            enable_auth_state=False,
            log=log,
        )
        self.discovery: Discovery | None = None
        self._checked_at = 0.0
        self._problem: str | None = None
        self._keys: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._first_look: asyncio.Task | None = None

    @classmethod
    def from_authenticator(cls, authenticator: Any) -> OidcLogin:
        """Read the oidc_* traits (and the hub's public_url) once."""
        public_url = getattr(authenticator.parent, "public_url", "") or ""
        return cls(
            OidcSettings(
                issuer=authenticator.oidc_issuer.rstrip("/"),
                client_id=authenticator.oidc_client_id,
                client_secret=authenticator.oidc_client_secret,
                scopes=tuple(authenticator.oidc_scopes),
                username_claim=authenticator.oidc_username_claim,
                groups_claim=authenticator.oidc_groups_claim,
                allowed_groups=tuple(authenticator.oidc_allowed_groups),
                admin_groups=tuple(authenticator.oidc_admin_groups),
                provider_name=authenticator.login_service,
                callback_url=authenticator.oidc_callback_url
                or callback_from_public_url(public_url),
                enable_auth_state=authenticator.enable_auth_state,
            ),
            authenticator.log,
        )

    # --- start-up -----------------------------------------------------------------

    def check_at_start(self, app: Any) -> None:
        """Issuer, client and callback set, auth_state encrypted; the provider may still be down."""
        s = self.settings
        missing = [
            name
            for name, value in (
                ("LABHUB_OIDC_ISSUER", s.issuer),
                ("LABHUB_OIDC_CLIENT_ID", s.client_id),
                ("LABHUB_OIDC_CLIENT_SECRET", s.client_secret),
                ("LABHUB_PUBLIC_URL", s.callback_url),
            )
            if not value
        ]
        if missing:
            refuse_to_start(
                self.log, f"OIDC mode needs {', '.join(missing)} (or the configure() options)."
            )
        issuer = urlparse(s.issuer)
        if issuer.scheme != "https" and not (
            issuer.scheme == "http" and is_loopback_bind(s.issuer)
        ):
            refuse_to_start(
                self.log,
                f"oidc_issuer {s.issuer!r} must be an https:// URL (http:// only on loopback).",
            )
        if "openid" not in s.scopes:
            refuse_to_start(self.log, "oidc_scopes must include 'openid'.")
        if not s.enable_auth_state or not _crypt_key_set():
            refuse_to_start(
                self.log,
                "OIDC mode keeps tokens and each user's provider account in encrypted auth_state: "
                "set c.Authenticator.enable_auth_state = True and JUPYTERHUB_CRYPT_KEY.",
            )
        self.log.info(
            "labhub: authentication mode oidc (issuer %s, client %s, callback %s)",
            s.issuer,
            s.client_id,
            s.callback_url,
        )
        with contextlib.suppress(RuntimeError):  # no event loop: outside a hub
            # learn the endpoints now if the provider answers; one that is down is no reason to stop
            self._first_look = asyncio.get_running_loop().create_task(self.provider_problem())

    # --- the provider -----------------------------------------------------------------

    async def discover(self, recheck: bool = False) -> Discovery:
        """The provider's endpoints, fetched once and asked again when ``recheck`` and stale."""
        async with self._lock:
            fresh = time.monotonic() - self._checked_at < RECHECK_SECONDS
            if self.discovery is not None and self._problem is None and (fresh or not recheck):
                return self.discovery
            url = discovery_url(self.settings.issuer)
            try:
                response = await self.client.http_client.fetch(
                    url, connect_timeout=FETCH_TIMEOUT, request_timeout=FETCH_TIMEOUT
                )
                discovery = parse_discovery(self.settings.issuer, json.loads(response.body))
            except ClaimsRefused as err:
                self._problem = (
                    f"{self.settings.provider_name} is not set up for this hub; "
                    "an administrator must check oidc_issuer."
                )
                self.log.error("OIDC discovery refused: %s", err)
                raise ProviderUnreachable(self._problem) from None
            except (OSError, HTTPClientError, ValueError) as err:
                self._problem = (
                    f"{self.settings.provider_name} cannot be reached just now; "
                    "try again in a minute."
                )
                self.log.warning("OIDC provider %s not answering: %s", url, err)
                raise ProviderUnreachable(self._problem) from None
            if discovery != self.discovery:
                self._keys = {}
            self.discovery, self._problem, self._checked_at = discovery, None, time.monotonic()
            self.client.authorize_url = discovery.authorization_endpoint
            self.client.token_url = discovery.token_endpoint
            self.client.userdata_url = discovery.userinfo_endpoint
            return discovery

    async def provider_problem(self) -> str | None:
        """None when the provider answers, else one sentence for the login page."""
        try:
            await self.discover(recheck=True)
        except ProviderUnreachable as err:
            return str(err)
        return None

    async def _signing_key(self, kid: str | None, alg: str | None) -> Any:
        if alg not in SIGNING_ALGORITHMS:
            raise ClaimsRefused(f"The provider signed its ID token with {alg!r}, which is refused.")
        for attempt in range(2):
            if attempt or not self._keys:
                # a restarted provider signs with new keys: read them again once
                try:
                    response = await self.client.http_client.fetch(
                        self.discovery.jwks_uri,
                        connect_timeout=FETCH_TIMEOUT,
                        request_timeout=FETCH_TIMEOUT,
                    )
                except (OSError, HTTPClientError) as err:
                    self.log.warning(
                        "OIDC keys at %s not answering: %s", self.discovery.jwks_uri, err
                    )
                    raise ProviderUnreachable(
                        f"{self.settings.provider_name} cannot be reached just now; "
                        "try again in a minute."
                    ) from None
                key_set = jwt.PyJWKSet.from_dict(json.loads(response.body))
                self._keys = {key.key_id: key.key for key in key_set.keys}
            if kid in self._keys:
                return self._keys[kid]
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
        raise ClaimsRefused("The provider's ID token is signed with a key it does not publish.")

    async def id_token_claims(self, token_info: dict[str, Any]) -> dict[str, Any]:
        """The ID token's claims, its signature, issuer, audience and expiry checked."""
        id_token = token_info.get("id_token")
        if not id_token:
            raise ClaimsRefused("The provider sent no ID token; keep 'openid' in oidc_scopes.")
        try:
            header = jwt.get_unverified_header(id_token)
            key = await self._signing_key(header.get("kid"), header.get("alg"))
            return jwt.decode(
                id_token,
                key=key,
                algorithms=[header["alg"]],
                audience=self.settings.client_id,
                issuer=self.discovery.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as err:
            raise ClaimsRefused(f"The provider's ID token does not verify: {err}.") from None

    def _provider_error(self, err: HTTPClientError) -> web.HTTPError:
        """One sentence for a failed code exchange or userinfo request."""
        try:
            code = json.loads(err.response.body).get("error", "") if err.response else ""
        except (ValueError, AttributeError):
            code = ""
        if code == "invalid_client":
            self.log.error(
                "OIDC provider refused client %r: wrong client secret?", self.settings.client_id
            )
            return _one_sentence(
                500,
                f"{self.settings.provider_name} refused this hub's client id or secret; "
                "an administrator must check oidc_client_id and oidc_client_secret.",
            )
        if code == "invalid_grant":
            return _one_sentence(
                403, "This sign-in code was used already or has expired; sign in again."
            )
        if err.code == 599:
            return _one_sentence(
                503,
                f"{self.settings.provider_name} cannot be reached just now; try again in a minute.",
            )
        return _one_sentence(
            502, f"{self.settings.provider_name} refused the sign-in ({code or err.code})."
        )

    # --- a login ------------------------------------------------------------------------

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        """The auth model of the person the provider sent back, or a 4xx with one sentence."""
        s = self.settings
        try:
            discovery = await self.discover()
        except ProviderUnreachable as err:
            raise _one_sentence(503, str(err)) from None
        client = self.client
        try:
            params = client.build_access_tokens_request_params(handler, data)
            token_info = await client.get_token_info(handler, params)
            user_info = await client.token_to_user(token_info)
        except HTTPClientError as err:
            raise self._provider_error(err) from None
        try:
            id_claims = await self.id_token_claims(token_info)
            if user_info.get("sub") != id_claims["sub"]:
                raise ClaimsRefused(
                    "The provider's userinfo is about another account than its ID token."
                )
            claims = {**id_claims, **user_info}
            sub = subject_of(claims)
            username = username_from_claims(claims, s.username_claim)
            groups = groups_from_claims(claims, s.groups_claim)
            check_binding(username, await _bound_subject(handler, username), sub, s.provider_name)
        except ClaimsRefused as err:
            self.log.warning("OIDC login refused: %s", err)
            raise _one_sentence(403, str(err)) from None
        except ProviderUnreachable as err:
            raise _one_sentence(503, str(err)) from None
        auth_state = client.build_auth_state_dict(token_info, user_info)
        auth_state.update(oidc_sub=sub, oidc_issuer=discovery.issuer)
        return {
            "name": username,
            "admin": admin_verdict(groups, s.admin_groups),
            "groups": groups,
            "auth_state": auth_state,
        }

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool | None:
        """Admins and members of oidc_allowed_groups; without those groups, the allow settings."""
        allowed = set(self.settings.allowed_groups)
        if auth_model is None or not allowed:
            return None
        if auth_model.get("admin") or allowed & set(auth_model.get("groups") or ()):
            return True
        self.log.warning(
            "Login of %r refused: groups %s, none of %s",
            username,
            auth_model.get("groups"),
            sorted(allowed),
        )
        raise _one_sentence(
            403, f"{username} is not in a group allowed to use this lab; ask an administrator."
        )

    def handlers(self, app: Any) -> list[tuple[str, type]]:
        """The login page, the redirect to the provider, its callback and the logout."""
        return [
            (r"/login", OidcLoginPageHandler),
            (r"/oauth_login", OidcRedirectHandler),
            (r"/oauth_callback", OidcCallbackHandler),
            (r"/logout", OAuthLogoutHandler),
        ]


async def _bound_subject(handler: Any, username: str) -> str | None:
    """The provider ``sub`` the hub user ``username`` was bound to, None for a new user."""
    user = handler.find_user(username)
    if user is None:
        return None
    state = await user.get_auth_state()
    return (state or {}).get("oidc_sub")


def _crypt_key_set() -> bool:
    from jupyterhub.crypto import CryptKeeper

    return bool(CryptKeeper.instance().keys)
