"""OIDC mode without a provider: claims to a login, discovery checks, settings and start-up checks."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from jupyterhub.crypto import CryptKeeper

from labhub.auth.claims import (
    ClaimsRefused,
    admin_verdict,
    check_binding,
    groups_from_claims,
    parse_discovery,
    subject_of,
    username_from_claims,
)
from labhub.auth.oidc_login import OidcLogin, OidcSettings, callback_from_public_url
from labhub.hub import options

from .test_authenticator import make_auth, refusals

ISSUER = "https://sso.lab.test/realms/lab"
DOCUMENT = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/auth",
    "token_endpoint": f"{ISSUER}/token",
    "userinfo_endpoint": f"{ISSUER}/me",
    "jwks_uri": f"{ISSUER}/jwks",
    "response_types_supported": ["code"],
    "code_challenge_methods_supported": ["S256"],
}


# --- claims to a username, groups and a subject -------------------------------------


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"preferred_username": "alice"}, "alice"),
        ({"preferred_username": "  Alice "}, "alice"),
        ({"preferred_username": "CORP\\Bob"}, "bob"),
        ({"preferred_username": "Carol@corp.example"}, "carol"),
        ({"preferred_username": "ｄａｖｅ"}, "dave"),  # fullwidth, as LDAP logins are folded
    ],
)
def test_usernames_are_normalised_like_ldap_logins(claims, expected):
    assert username_from_claims(claims, "preferred_username") == expected


@pytest.mark.security
@pytest.mark.parametrize(
    ("claims", "claim", "sentence"),
    [
        ({}, "preferred_username", "The provider sent no 'preferred_username' claim;"),
        ({"preferred_username": ""}, "preferred_username", "no 'preferred_username' claim"),
        ({"preferred_username": ["a"]}, "preferred_username", "no 'preferred_username' claim"),
        ({"upn": "a\x00b"}, "upn", "The 'upn' claim cannot be a username: "),
        ({"email": "eve@x.test"}, "email", "The provider has not verified this email address"),
        ({"email": "eve@x.test", "email_verified": "true"}, "email", "has not verified"),
        ({"email": "eve@x.test", "email_verified": False}, "email", "has not verified"),
    ],
)
def test_a_username_claim_that_cannot_be_used_is_refused_in_one_sentence(claims, claim, sentence):
    with pytest.raises(ClaimsRefused) as refused:
        username_from_claims(claims, claim)
    assert sentence in str(refused.value)
    assert str(refused.value).endswith(".") and "\n" not in str(refused.value)


def test_a_verified_email_is_a_username():
    claims = {"email": "Eve@X.test", "email_verified": True}
    assert username_from_claims(claims, "email") == "eve"


def test_groups_come_from_the_claim_named():
    assert groups_from_claims({"groups": ["b", "a", "a"]}, "groups") == ["a", "b"]
    assert groups_from_claims({"roles": "admins"}, "roles") == ["admins"]
    # Keycloak's full group paths: the last part is the group's name
    assert groups_from_claims({"groups": ["/lab/gpu-users", "/staff"]}, "groups") == [
        "gpu-users",
        "staff",
    ]
    assert groups_from_claims({"groups": []}, "groups") == []
    with pytest.raises(ClaimsRefused, match="The provider sent no 'roles' claim;"):
        groups_from_claims({"groups": ["a"]}, "roles")
    with pytest.raises(ClaimsRefused, match="is not a list of group names"):
        groups_from_claims({"groups": [1, 2]}, "groups")


@pytest.mark.security
def test_a_username_is_bound_to_its_first_subject():
    check_binding("alice", None, "sub-1", "Keycloak")  # first login: bound now
    check_binding("alice", "sub-1", "sub-1", "Keycloak")
    with pytest.raises(ClaimsRefused) as refused:
        check_binding("alice", "sub-1", "sub-2", "Keycloak")
    assert str(refused.value) == (
        "The hub user 'alice' belongs to another Keycloak account; "
        "ask an administrator if your account was renamed."
    )
    assert subject_of({"sub": "sub-1"}) == "sub-1"
    with pytest.raises(ClaimsRefused, match="no 'sub' claim"):
        subject_of({"sub": ""})


def test_admin_groups_decide_both_ways_only_when_set():
    assert admin_verdict(["lab-admins"], ["lab-admins"]) is True
    assert admin_verdict(["lab-users"], ["lab-admins"]) is False  # leaving the group demotes
    assert admin_verdict(["lab-admins"], []) is None


# --- discovery --------------------------------------------------------------------


def test_discovery_gives_the_endpoints():
    found = parse_discovery(ISSUER + "/", DOCUMENT)
    assert (found.token_endpoint, found.jwks_uri) == (f"{ISSUER}/token", f"{ISSUER}/jwks")


@pytest.mark.security
@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        ({"issuer": "https://evil.test"}, "calls itself 'https://evil.test'; set oidc_issuer"),
        ({"jwks_uri": ""}, "names no jwks_uri"),
        ({"response_types_supported": ["id_token"]}, "does not offer the authorization-code"),
        ({"code_challenge_methods_supported": ["plain"]}, "does not offer PKCE with S256"),
    ],
)
def test_a_discovery_document_the_hub_cannot_trust_is_refused(change, sentence):
    with pytest.raises(ClaimsRefused, match=sentence):
        parse_discovery(ISSUER, {**DOCUMENT, **change})
    with pytest.raises(ClaimsRefused, match="is not a JSON object"):
        parse_discovery(ISSUER, ["not", "a", "document"])


# --- settings, read once, and the start-up checks -----------------------------------------


def oidc_auth(**settings):
    base = {
        "oidc_issuer": ISSUER + "/",
        "oidc_client_id": "hub",
        "oidc_client_secret": "client-secret-value",
        "oidc_callback_url": "https://lab.test/hub/oauth_callback",
        "oidc_allowed_groups": ["lab-users"],
        "enable_auth_state": True,
    }
    return make_auth(options.OIDC, **{**base, **settings})


def test_oidc_login_reads_its_settings_once():
    auth = oidc_auth(login_service="Keycloak")
    settings = auth.login.settings
    assert isinstance(auth.login, OidcLogin) and isinstance(settings, OidcSettings)
    assert settings.issuer == ISSUER and settings.provider_name == "Keycloak"
    assert settings.scopes == options.DEFAULT_OIDC_SCOPES == ("openid", "profile", "email")
    assert (settings.username_claim, settings.groups_claim) == ("preferred_username", "groups")
    assert settings.allowed_groups == ("lab-users",)
    assert "client-secret-value" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.issuer = "x"  # type: ignore[misc]
    # the OAuth client: PKCE, the callback, and the provider's name on the button
    client = auth.login.client
    assert client.enable_pkce and client.oauth_callback_url == "https://lab.test/hub/oauth_callback"
    assert auth.login_url("/hub/") == "/hub/oauth_login"
    assert auth.manage_groups is True  # the groups claim becomes hub groups at each login


def test_the_button_names_the_provider_only_in_oidc_mode():
    assert oidc_auth().login_service == options.DEFAULT_OIDC_PROVIDER_NAME
    dummy = make_auth(options.DUMMY, dummy_password="pw")
    assert dummy.login_service == "" and dummy.login_url("/hub/") == "/hub/login"


def test_the_callback_follows_the_public_url():
    assert callback_from_public_url("https://lab.test/") == "https://lab.test/hub/oauth_callback"
    assert callback_from_public_url("") == ""


@pytest.fixture
def crypt_key(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "ab" * 32)
    CryptKeeper.clear_instance()
    yield
    CryptKeeper.clear_instance()


def test_oidc_login_checks_at_start(caplog, crypt_key):
    caplog.set_level(logging.INFO)
    oidc_auth().login.check_at_start(None)
    assert f"authentication mode oidc (issuer {ISSUER}, client hub" in caplog.text
    assert "client-secret-value" not in caplog.text
    for settings, sentence in [
        ({"oidc_issuer": "", "oidc_client_secret": ""}, "OIDC mode needs LABHUB_OIDC_ISSUER, "),
        ({"oidc_callback_url": ""}, "OIDC mode needs LABHUB_PUBLIC_URL"),
        (
            {"oidc_issuer": "http://sso.lab.test"},
            "must be an https:// URL (http:// only on loopback)",
        ),
        ({"oidc_scopes": ["profile"]}, "oidc_scopes must include 'openid'."),
        ({"enable_auth_state": False}, "set c.Authenticator.enable_auth_state = True"),
    ]:
        caplog.clear()
        with pytest.raises(SystemExit):
            oidc_auth(**settings).login.check_at_start(None)
        (refusal,) = refusals(caplog)
        assert sentence in refusal and "\n" not in refusal
    oidc_auth(oidc_issuer="http://127.0.0.1:9000").login.check_at_start(None)


def test_oidc_mode_without_a_crypt_key_is_refused(caplog, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY", raising=False)
    CryptKeeper.clear_instance()
    with pytest.raises(SystemExit):
        oidc_auth().login.check_at_start(None)
    assert "JUPYTERHUB_CRYPT_KEY" in refusals(caplog)[0]


def test_the_allow_warning_applies_only_without_allowed_groups():
    assert oidc_auth().login.allow_config_applies is False
    assert oidc_auth(oidc_allowed_groups=[]).login.allow_config_applies is True


# --- the ID token: signature, algorithm, audience (no provider: a key made here) ----------


@pytest.fixture
def signed_login():
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from labhub.auth.claims import Discovery

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    login = oidc_auth().login
    login.discovery = Discovery(ISSUER, "", "", "", "http://127.0.0.1:1/jwks")
    login._keys = {"k1": key.public_key()}
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "hub", "sub": "alice", "iat": now, "exp": now + 300}

    def token(alg="RS256", kid="k1", signer=key, **changes):
        return jwt.encode({**claims, **changes}, signer, algorithm=alg, headers={"kid": kid})

    return login, token


@pytest.mark.security
def test_only_a_token_signed_by_the_provider_for_this_hub_is_believed(signed_login):
    import asyncio

    from labhub.auth.oidc_login import ProviderUnreachable

    login, token = signed_login

    def claims_of(id_token):
        return asyncio.run(login.id_token_claims({"id_token": id_token}))

    assert claims_of(token())["sub"] == "alice"
    # the client secret as an HMAC key, or no signature: an attacker's favourite confusions
    for alg, signer in (("HS256", "client-secret-value"), ("none", None)):
        with pytest.raises(
            ClaimsRefused, match=f"signed its ID token with '{alg}', which is refused"
        ):
            claims_of(token(alg=alg, signer=signer))
    for changes, what in (
        ({"aud": "another-app"}, "Audience"),
        ({"iss": "https://evil.test"}, "issuer"),
        ({"exp": 1}, "expired"),
    ):
        with pytest.raises(ClaimsRefused, match=f"does not verify: .*{what}"):
            claims_of(token(**changes))
    with pytest.raises(ClaimsRefused, match="sent no ID token"):
        asyncio.run(login.id_token_claims({}))
    # a key it does not know: read the keys again, and that provider is down here
    with pytest.raises(ProviderUnreachable, match="cannot be reached just now"):
        claims_of(token(kid="k2"))
