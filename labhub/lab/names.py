"""Every name labhub gives: users' folders, labs, pool containers, folder helpers, CIFS volumes.

Every code path that names something after a user (the personal folder, Docker
volumes, container and service names, on Docker and on Swarm) goes through
:func:`user_folder_name`, so the rules live in one place.

The mapping is injective: a username that is already a safe name is kept as it
is, and every other username becomes ``<readable stem>--<12 hex digits of
sha256>``. Kept names never contain ``--``, so a hashed name can never equal a
kept one, and two hashed names collide only if sha256 does.

The containers of one hub (prefix ``P``, whose part before its first ``-`` is ``A``)
never share a name, by the characters right after ``P`` and ``A``:

- a lab is ``P-`` and a letter or digit (:func:`lab_object_name`: a kept folder
  name and a hashed stem both start with one);
- a pool container is ``P--pool-`` and 12 hex digits (:func:`pool_container_name`):
  ``-`` right after ``P-``, which no lab name has;
- a folder helper is ``A_folder-`` (:func:`folder_helper_name`): ``_`` right after
  ``A``, where every lab and pool container name has the ``-`` that follows ``A``.

CIFS volumes live in Docker's other namespace, and are injective among themselves
(:func:`cifs_volume_name`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
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


# a spawn needs the name for paths, labels and object names: hash each username once
@functools.lru_cache(maxsize=4096)
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


#: Longest Swarm service name (a DNS label); container names may be longer but share the rule.
MAX_OBJECT_NAME_LENGTH = 63
_OBJECT_NAME = re.compile(r"[a-z0-9](?:[-_]*[a-z0-9]+)*")


def is_valid_object_name(name: str) -> bool:
    """True when ``name`` is accepted as a container name and as a Swarm service name."""
    return len(name) <= MAX_OBJECT_NAME_LENGTH and _OBJECT_NAME.fullmatch(name) is not None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_LENGTH]


def lab_object_name(prefix: str, username: str, servername: str = "") -> str:
    """The container and Swarm service name of a user's (named) server; valid for both engines.

    ``{prefix}-{folder name}`` when that is a valid service name (at most 63
    characters of ``[a-z0-9_-]``, starting and ending alphanumeric); otherwise, and
    for every named server, ``{prefix}-{stem}--{digest}`` where the digest covers
    the username and the server name together. Kept names come from kept folder
    names, which never contain ``--``, so a kept name never equals a digested one,
    and no server name can reproduce another user's name.
    """
    prefix = prefix.lower()
    if not _OBJECT_NAME.fullmatch(prefix) or len(prefix) > 24:
        raise ValueError(
            f"prefix {prefix!r} must be at most 24 letters, digits, '-' or '_', "
            "starting and ending with a letter or digit."
        )
    folder = user_folder_name(username)
    if not servername:
        kept = f"{prefix}-{folder}"
        if is_valid_object_name(kept):
            return kept
        digest = _digest(username)
    else:
        # NUL never occurs in a username the hub accepts, so (user, server) pairs stay apart
        digest = _digest(f"{username}\x00{servername}")
    readable = folder.split("--", 1)[0] + (f"-{servername}" if servername else "")
    ascii_form = unicodedata.normalize("NFKD", readable).encode("ascii", "ignore").decode().lower()
    room = MAX_OBJECT_NAME_LENGTH - len(prefix) - _DIGEST_LENGTH - 3
    stem = _NOT_ALNUM.sub("-", ascii_form).strip("-")[:room].strip("-") or "lab"
    return f"{prefix}-{stem}--{digest}"


def folder_helper_name(lab_name: str) -> str:
    """Name of the one-shot folder helper for ``lab_name``: never a lab's name.

    Lab names are ``{prefix}-...``; helpers are ``{prefix}_folder-...`` hashed to fit,
    so user ``x-folder`` and the helper of user ``x`` cannot meet.
    """
    prefix, _, rest = lab_name.partition("-")
    name = f"{prefix}_folder-{rest}"
    if len(name) <= MAX_OBJECT_NAME_LENGTH:
        return name
    return f"{prefix}_folder-{rest[: MAX_OBJECT_NAME_LENGTH - len(prefix) - 22]}-{_digest(rest)}"


#: Hex digits of a pool slot: the suffix of a free pool container's name.
SLOT_LENGTH = 12
_SLOT = re.compile(f"[0-9a-f]{{{SLOT_LENGTH}}}")


def pool_container_name(prefix: str, slot: str) -> str:
    """The name of a free pool container: ``{prefix}--pool-{slot}``, never a lab's name.

    Every lab name has a letter or digit right after ``{prefix}-``; this has a ``-``.
    """
    if not _SLOT.fullmatch(slot):
        raise ValueError(f"{slot!r} is not a pool slot of {SLOT_LENGTH} hex digits.")
    return f"{prefix}--pool-{slot}"


def is_pool_container_name(prefix: str, name: str) -> bool:
    """True when ``name`` is exactly a free pool container's name of the hub with ``prefix``."""
    head = f"{prefix}--pool-"
    name = name.lstrip("/")
    return name.startswith(head) and _SLOT.fullmatch(name[len(head) :]) is not None


def is_legacy_pool_container_name(prefix: str, name: str, slot: str) -> bool:
    """True for a free pool container named the old way, ``{prefix}-pool-{slot}``.

    Earlier hubs named them so; a hub restarted after the upgrade removes them. That
    name is also user ``pool-{slot}``'s lab name, so only a container whose own slot
    label is the suffix counts: a lab taken from the pool keeps the random slot of
    the container it was, which no username can be chosen to match.
    """
    return _SLOT.fullmatch(slot) is not None and name.lstrip("/") == f"{prefix}-pool-{slot}"


def cifs_volume_name(prefix: str, share_name: str, username: str) -> str:
    """The per-user Docker volume name of a CIFS share, carrying the hub's ``prefix``.

    The share name's length goes before it, so the name is injective: share ``home``
    with user ``archive-bob`` and share ``home-archive`` with user ``bob`` are
    ``...-cifs4-home-archive-bob`` and ``...-cifs12-home-archive-bob``, never one
    volume (Docker would give the second user the first one's options and password).
    """
    return f"{prefix}-cifs{len(share_name)}-{share_name}-{user_folder_name(username)}"


#: The prefix of every object a hub creates, before its identity is added.
DEFAULT_PREFIX = "labhub"
_IDENTITY_LENGTH = 6


def hub_identity(cookie_secret: bytes) -> str:
    """A short id of one hub, the same across its restarts, from its cookie secret.

    Two hubs on one engine each have their own secret (JupyterHub keeps it in
    ``cookie_secret_file``), so their ids differ; an HMAC keeps the secret itself
    out of every container name.
    """
    digest = hmac.new(cookie_secret, b"labhub hub identity", hashlib.sha256).hexdigest()
    return digest[:_IDENTITY_LENGTH]


def hub_prefix(identity: str) -> str:
    """The default prefix of a hub's labs, pool containers, helpers and volumes."""
    return f"{DEFAULT_PREFIX}-{identity}" if identity else DEFAULT_PREFIX
