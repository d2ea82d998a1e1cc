"""Turn any JupyterHub username into a safe, unique name for folders, volumes and containers.

Every code path that names something after a user (the personal folder, Docker
volumes, container and service names, on Docker and on Swarm) goes through
:func:`user_folder_name`, so the rules live in one place.

The mapping is injective: a username that is already a safe name is kept as it
is, and every other username becomes ``<readable stem>--<12 hex digits of
sha256>``. Kept names never contain ``--``, so a hashed name can never equal a
kept one, and two hashed names collide only if sha256 does.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

#: Longest name returned; Docker accepts far more, but paths and volume names stay readable.
MAX_NAME_LENGTH = 64
_DIGEST_LENGTH = 12

_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def is_safe_name(name: str, max_length: int = MAX_NAME_LENGTH) -> bool:
    """True when ``name`` can be used unchanged as a folder and Docker object name."""
    return (
        0 < len(name) <= max_length
        and _SAFE_NAME.fullmatch(name) is not None
        and "--" not in name
        and not name.endswith(".")
    )


def user_folder_name(username: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """Return the folder / Docker name for ``username``; never empty, never a path.

    >>> user_folder_name("alice")
    'alice'
    >>> user_folder_name("Alice").startswith("alice--")
    True
    """
    if max_length < _DIGEST_LENGTH + 4:
        raise ValueError(f"max_length must be at least {_DIGEST_LENGTH + 4}, not {max_length}")
    if is_safe_name(username, max_length):
        return username
    # surrogatepass: even a lone surrogate from a hostile request hashes instead of raising
    digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_LENGTH]
    ascii_form = (
        unicodedata.normalize("NFKD", username).encode("ascii", "ignore").decode("ascii").lower()
    )
    stem = _NOT_ALNUM.sub("-", ascii_form).strip("-")
    stem = stem[: max_length - _DIGEST_LENGTH - 2].strip("-") or "user"
    return f"{stem}--{digest}"
