"""Pure functions that turn what a person types at the login form into a lab username."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: Longest login accepted; directories allow less, and this keeps logs and filters small.
MAX_LOGIN_LENGTH = 256


class LoginRefused(ValueError):
    """The login name cannot be used; the message is safe to log (it never holds a password)."""


@dataclass(frozen=True)
class LoginName:
    """A login split into the directory's user name and an optional domain."""

    user: str
    domain: str = ""


def split_login(raw: str) -> LoginName:
    """Normalise a typed login: trim, accept ``DOMAIN\\user`` and ``user@domain``, lowercase.

    >>> split_login("  CORP\\\\Alice ")
    LoginName(user='alice', domain='CORP')
    >>> split_login("bob@corp.example")
    LoginName(user='bob', domain='corp.example')
    """
    if not isinstance(raw, str):
        raise LoginRefused("The username must be text.")
    # NFKC: the directory matches fullwidth and other compatibility forms as the plain name
    name = unicodedata.normalize("NFKC", raw).strip()
    if not name:
        raise LoginRefused("The username is empty.")
    if len(name) > MAX_LOGIN_LENGTH:
        raise LoginRefused(f"The username is longer than {MAX_LOGIN_LENGTH} characters.")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise LoginRefused("The username contains a control character.")
    domain = ""
    if "\\" in name:
        domain, _, name = name.partition("\\")
    elif name.count("@") == 1:
        name, _, domain = name.partition("@")
    name = name.strip()
    if not name or "\\" in name or "@" in name:
        raise LoginRefused("The username is not of the form user, DOMAIN\\user or user@domain.")
    return LoginName(user=name.lower(), domain=domain.strip())
