"""Which hub this process is: the identity its objects carry, so two hubs on one engine stay apart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labhub.lab.names import hub_identity

#: The identity of the hub running in this process, once its start-up ran.
_current = ""


def remember(cookie_secret: bytes | None) -> str:
    """Record this process's hub identity at hub start; return it ("" without a secret)."""
    global _current
    _current = hub_identity(cookie_secret) if cookie_secret else ""
    return _current


def of_settings(settings: Mapping[str, Any] | None) -> str:
    """The identity of the hub whose tornado settings these are, else the one remembered."""
    secret = (settings or {}).get("cookie_secret")
    return hub_identity(secret) if secret else _current
