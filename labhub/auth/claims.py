"""Pure functions that turn an OpenID provider's answers into a lab login; no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from labhub.auth.usernames import LoginRefused, split_login


class ClaimsRefused(ValueError):
    """The provider's answer cannot log anyone in; the message is one sentence, safe to show."""


@dataclass(frozen=True)
class Discovery:
    """The endpoints an issuer's ``/.well-known/openid-configuration`` names."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def discovery_url(issuer: str) -> str:
    """Where ``issuer`` publishes its configuration (OpenID Connect Discovery 1.0, section 4)."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_discovery(issuer: str, document: Any) -> Discovery:
    """The endpoints of ``document``, held to the issuer the admin configured.

    A document for another issuer, one without the code flow, or one whose PKCE
    methods leave out S256 is refused: the hub would otherwise trust endpoints
    chosen by whoever answered.
    """
    if not isinstance(document, Mapping):
        raise ClaimsRefused(f"{discovery_url(issuer)} is not a JSON object.")
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise ClaimsRefused(
            f"The provider at {issuer} calls itself {document.get('issuer')!r}; "
            "set oidc_issuer to exactly its issuer URL."
        )
    missing = [
        key
        for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
        if not document.get(key)
    ]
    if missing:
        raise ClaimsRefused(f"The provider at {issuer} names no {', '.join(missing)}.")
    if "code" not in document.get("response_types_supported", ["code"]):
        raise ClaimsRefused(f"The provider at {issuer} does not offer the authorization-code flow.")
    if "S256" not in document.get("code_challenge_methods_supported", ["S256"]):
        raise ClaimsRefused(f"The provider at {issuer} does not offer PKCE with S256.")
    return Discovery(
        issuer=document["issuer"],
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        userinfo_endpoint=document["userinfo_endpoint"],
        jwks_uri=document["jwks_uri"],
    )


def username_from_claims(claims: Mapping[str, Any], claim: str) -> str:
    """The hub username in ``claims[claim]``, normalised like an LDAP login.

    An ``email`` claim counts only when the provider says ``email_verified`` is true:
    anyone can type an address into a profile.
    """
    raw = claims.get(claim)
    if not isinstance(raw, str) or not raw.strip():
        raise ClaimsRefused(
            f"The provider sent no {claim!r} claim; ask for the scope that carries it "
            "or set oidc_username_claim."
        )
    if claim == "email" and claims.get("email_verified") is not True:
        raise ClaimsRefused(
            "The provider has not verified this email address, so it cannot be a username."
        )
    try:
        return split_login(raw).user
    except LoginRefused as err:
        raise ClaimsRefused(f"The {claim!r} claim cannot be a username: {err}") from None


def groups_from_claims(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The group names in ``claims[claim]``: a list of strings, or refused naming the claim."""
    raw = claims.get(claim)
    if raw is None:
        raise ClaimsRefused(
            f"The provider sent no {claim!r} claim; ask for the scope that carries it "
            "or set oidc_groups_claim."
        )
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(g, str) for g in raw):
        raise ClaimsRefused(f"The {claim!r} claim is not a list of group names.")
    # Keycloak sends full paths ("/lab/users") unless told otherwise: the last part is the name
    return sorted({g.rstrip("/").rsplit("/", 1)[-1] for g in raw if g.strip("/")})


def subject_of(claims: Mapping[str, Any]) -> str:
    """The provider's stable id of the account (``sub``), which no user can edit."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise ClaimsRefused("The provider sent no 'sub' claim.")
    return sub


def check_binding(username: str, bound: str | None, sub: str, provider: str) -> None:
    """Refuse a login whose ``sub`` differs from the one ``username`` was bound to first."""
    if bound is not None and bound != sub:
        raise ClaimsRefused(
            f"The hub user {username!r} belongs to another {provider} account; "
            "ask an administrator if your account was renamed."
        )


def admin_verdict(groups: Iterable[str], admin_groups: Iterable[str]) -> bool | None:
    """True or False with admin groups configured (so leaving one demotes), None without."""
    admin_groups = set(admin_groups)
    if not admin_groups:
        return None
    return bool(admin_groups & set(groups))
