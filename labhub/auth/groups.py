"""Which directory groups a user is in, by name: OpenLDAP ``groupOfNames`` searches or AD ``memberOf``.

Runs inside the blocking login (:mod:`labhub.auth.directory`, in the thread pool,
under its timeouts). A group's JupyterHub name is its ``cn``; every value that came
from a user is escaped before it reaches a filter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import ldap3
import ldap3.core.exceptions
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

#: Most groups read for one user; a directory that returns more is cut here, not looped over.
MAX_GROUPS = 500


def group_name(dn: str) -> str | None:
    """The ``cn`` of a group DN (``cn=datasci,ou=groups,...`` -> ``datasci``); None if it has none."""
    try:
        parts = parse_dn(dn)
    except Exception:  # ldap3 raises its own errors for malformed DNs
        return None
    if parts and parts[0][0].lower() == "cn" and parts[0][1]:
        return _unescape(parts[0][1])
    return None


_ESCAPE = re.compile(rb"\\([0-9a-fA-F]{2}|.)")


def _unescape(value: str) -> str:
    """An RFC 4514 attribute value as written by a person: ``R\\2CD`` -> ``R,D``."""

    def one(match: re.Match) -> bytes:
        code = match.group(1)
        return bytes.fromhex(code.decode()) if len(code) == 2 else code

    return _ESCAPE.sub(one, value.encode("utf-8")).decode("utf-8", "replace")


def names_from_dns(dns: Iterable[str]) -> list[str]:
    """Group names from group DNs, in order, without repeats or DNs that have no ``cn``."""
    names = [group_name(str(dn)) for dn in dns]
    return list(dict.fromkeys(n for n in names if n))


def search_group_names(
    conn: ldap3.Connection, search_base: str, group_filter: str, user_dn: str, login_name: str
) -> list[str]:
    """The ``cn`` of every group under ``search_base`` whose members include the user."""
    conn.search(
        search_base=search_base,
        search_filter=group_filter.format(
            userdn=escape_filter_chars(user_dn), uid=escape_filter_chars(login_name)
        ),
        search_scope=ldap3.SUBTREE,
        attributes=["cn"],
        size_limit=MAX_GROUPS,
    )
    names: list[str] = []
    for entry in conn.entries:
        values: Any = entry.entry_attributes_as_dict.get("cn") or []
        name = str(values[0]) if values else group_name(entry.entry_dn)
        if name and name not in names:
            names.append(name)
    return names


def member_of_names(conn: ldap3.Connection, user_dn: str, attribute: str = "memberOf") -> list[str]:
    """Group names from the user's own ``memberOf`` (Active Directory, OpenLDAP's memberof overlay)."""
    conn.search(
        search_base=user_dn,
        search_filter="(objectClass=*)",
        search_scope=ldap3.BASE,
        attributes=[attribute],
    )
    if len(conn.entries) != 1:
        return []
    values = conn.entries[0].entry_attributes_as_dict.get(attribute) or []
    return names_from_dns(values[:MAX_GROUPS])


def group_exists(conn: ldap3.Connection, search_base: str, name: str) -> bool:
    """True when a group with ``cn=name`` exists under ``search_base``."""
    conn.search(
        search_base=search_base,
        search_filter=f"(cn={escape_filter_chars(name)})",
        search_scope=ldap3.SUBTREE,
        attributes=[],
        size_limit=1,
    )
    return bool(conn.entries)


def missing_groups(settings: Any, names: Iterable[str]) -> list[str]:
    """Which of ``names`` no group under ``settings.group_search_base`` has as its ``cn``.

    Asked once at hub start, with the search account (or anonymously), on the first
    server that answers; DirectoryUnavailable when none does. With
    ``group_member_attribute`` (AD), groups may live anywhere: nothing is reported.
    """
    from labhub.auth.directory import (  # directory imports this module
        DirectoryUnavailable,
        _bind,
        _server,
    )

    wanted = list(dict.fromkeys(names))
    if not wanted or not settings.group_search_base:
        return []
    reasons = []
    for host in settings.servers:
        try:
            conn = _bind(
                settings, _server(settings, host), settings.search_user, settings.search_password
            )
        except ldap3.core.exceptions.LDAPException as err:
            reasons.append(
                f"{host}: {str(err).splitlines()[0][:200] if str(err) else type(err).__name__}"
            )
            continue
        except OSError as err:
            reasons.append(f"{host}: {err}")
            continue
        try:
            return [n for n in wanted if not group_exists(conn, settings.group_search_base, n)]
        finally:
            conn.unbind()
    raise DirectoryUnavailable("; ".join(reasons) or "no LDAP server configured")
