"""One LDAP login, synchronous, bounded by timeouts, with failover across servers.

Everything here blocks (ldap3 is a blocking client); LabAuthenticator runs it in a
thread pool under an overall deadline, so a slow directory never stalls the hub.
Every value typed by a user is escaped before it reaches a DN (RFC 4514) or a
filter (RFC 4515).
"""

from __future__ import annotations

import logging
import math
import ssl
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPBindError, LDAPCommunicationError, LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from labhub.auth import groups
from labhub.hub.options import (
    DEFAULT_LDAP_CONNECT_TIMEOUT,
    DEFAULT_LDAP_RESPONSE_TIMEOUT,
    DEFAULT_LDAP_TLS,
)

log = logging.getLogger("labhub.auth")


class DirectoryUnavailable(RuntimeError):
    """No configured server could be reached (or its certificate was refused)."""


@dataclass(frozen=True)
class DirectorySettings:
    """What one login needs to know about the directory, as plain values read once from the traits."""

    servers: tuple[str, ...]
    port: int
    tls_strategy: str = DEFAULT_LDAP_TLS
    #: check the server's certificate and name; off only by an explicit choice
    tls_verify: bool = True
    #: CA bundle (PEM); empty: the system's trusted CAs
    tls_ca_file: str = ""
    #: further ``ldap3.Tls`` arguments (LDAPAuthenticator.tls_kwargs), as (name, value) pairs
    tls_kwargs: tuple[tuple[str, Any], ...] = ()
    connect_timeout: float = DEFAULT_LDAP_CONNECT_TIMEOUT
    response_timeout: float = DEFAULT_LDAP_RESPONSE_TIMEOUT
    bind_dn_templates: tuple[str, ...] = ()
    lookup_dn: bool = False
    search_user: str | None = None
    search_password: str | None = field(default=None, repr=False)
    user_search_base: str | None = None
    user_attribute: str | None = None
    lookup_filter: str = "({login_attr}={login})"
    lookup_dn_attribute: str | None = None
    search_filter: str = ""
    group_dns: tuple[str, ...] = ()
    group_filter: str = "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))"
    attributes: tuple[str, ...] = ()
    #: where to find every group of a user by name (manage_groups); empty: not wanted
    group_search_base: str = ""
    #: the user's own attribute listing group DNs (``memberOf`` on AD); used instead of a search
    group_member_attribute: str = ""


@dataclass
class DirectoryUser:
    """A user the directory accepted."""

    dn: str
    login_name: str
    groups: list[str]
    attributes: dict[str, Any]
    group_names: list[str] = field(default_factory=list)


def _tls(settings: DirectorySettings) -> ldap3.Tls:
    """The TLS side of a connection; built here, not at start, as ldap3 checks the CA file exists."""
    options: dict[str, Any] = {
        "validate": ssl.CERT_REQUIRED if settings.tls_verify else ssl.CERT_NONE
    }
    if settings.tls_ca_file:
        options["ca_certs_file"] = settings.tls_ca_file
    options.update(settings.tls_kwargs)
    return ldap3.Tls(**options)


def _server(settings: DirectorySettings, host: str) -> ldap3.Server:
    port = settings.port
    if ":" in host and not host.startswith("["):
        host, _, port_text = host.rpartition(":")
        port = int(port_text)
    return ldap3.Server(
        host,
        port=port,
        use_ssl=settings.tls_strategy == "on_connect",
        tls=_tls(settings),
        connect_timeout=settings.connect_timeout,
        get_info=ldap3.NONE,
    )


def _bind(settings: DirectorySettings, server: ldap3.Server, dn: str | None, password: str | None):
    """A bound connection, or LDAPBindError for refused credentials; socket errors propagate."""
    auto_bind = (
        ldap3.AUTO_BIND_TLS_BEFORE_BIND
        if settings.tls_strategy == "before_bind"
        else ldap3.AUTO_BIND_NO_TLS
    )
    return ldap3.Connection(
        server,
        user=dn,
        password=password,
        auto_bind=auto_bind,
        # ldap3 packs this into SO_RCVTIMEO, which takes whole seconds
        receive_timeout=max(1, math.ceil(settings.response_timeout)),
        read_only=True,
    )


def _lookup(settings: DirectorySettings, server: ldap3.Server, user: str) -> tuple[str, str] | None:
    """Find the user's DN and directory name with the search account; None when not exactly one."""
    try:
        conn = _bind(settings, server, settings.search_user, settings.search_password)
    except LDAPBindError:
        log.error(
            "The LDAP search account %s was refused; check lookup_dn_search_user/password.",
            settings.search_user,
        )
        return None
    try:
        name_attribute = settings.lookup_dn_attribute or settings.user_attribute
        conn.search(
            search_base=settings.user_search_base,
            search_filter=settings.lookup_filter.format(
                login_attr=settings.user_attribute, login=escape_filter_chars(user)
            ),
            search_scope=ldap3.SUBTREE,
            attributes=[name_attribute],
            size_limit=2,
        )
        if len(conn.entries) != 1:
            return None
        entry = conn.entries[0]
        values = entry.entry_attributes_as_dict.get(name_attribute) or [user]
        return entry.entry_dn, str(values[0])
    finally:
        conn.unbind()


def _login_on(
    settings: DirectorySettings, server: ldap3.Server, user: str, password: str
) -> DirectoryUser | None:
    if settings.lookup_dn:
        found = _lookup(settings, server, user)
        if found is None:
            return None
        candidates, login_name = [found[0]], found[1]
    else:
        candidates = [t.format(username=escape_rdn(user)) for t in settings.bind_dn_templates]
        login_name = user
    conn = None
    for dn in candidates:
        try:
            conn = _bind(settings, server, dn, password)
            break
        except LDAPBindError:
            continue
    if conn is None:
        return None
    try:
        if settings.search_filter:
            conn.search(
                search_base=settings.user_search_base,
                search_filter=settings.search_filter.format(
                    userattr=settings.user_attribute, username=escape_filter_chars(login_name)
                ),
                search_scope=ldap3.SUBTREE,
                attributes=[],
                size_limit=2,
            )
            if len(conn.entries) != 1:
                return None
        groups = []
        for group in settings.group_dns:
            conn.search(
                search_base=group,
                search_filter=settings.group_filter.format(
                    userdn=escape_filter_chars(dn), uid=escape_filter_chars(login_name)
                ),
                search_scope=ldap3.BASE,
                attributes=[],
            )
            if conn.entries:
                groups.append(group)
        group_names = _group_names(settings, conn, dn, login_name)
        attributes: dict[str, Any] = {}
        if settings.attributes:
            conn.search(
                search_base=dn,
                search_filter="(objectClass=*)",
                search_scope=ldap3.BASE,
                attributes=list(settings.attributes),
            )
            if len(conn.entries) == 1:
                attributes = {
                    k: [str(v) for v in vs]
                    for k, vs in conn.entries[0].entry_attributes_as_dict.items()
                }
        return DirectoryUser(
            dn=dn,
            login_name=login_name,
            groups=groups,
            attributes=attributes,
            group_names=group_names,
        )
    finally:
        conn.unbind()


def _group_names(settings: DirectorySettings, conn: Any, dn: str, login_name: str) -> list[str]:
    if settings.group_member_attribute:
        return groups.member_of_names(conn, dn, settings.group_member_attribute)
    if settings.group_search_base:
        return groups.search_group_names(
            conn, settings.group_search_base, settings.group_filter, dn, login_name
        )
    return []


def directory_login(settings: DirectorySettings, user: str, password: str) -> DirectoryUser | None:
    """Check ``user``/``password`` against the first server that answers.

    Returns the user, or None when the directory says no (wrong password, unknown
    user, filter not matched). Raises DirectoryUnavailable when no server answers;
    a wrong password is never retried on the next server (that would count twice
    against lockout policies).
    """
    if not password:
        return None  # an empty password is an anonymous bind in LDAP: never a login
    reasons = []
    for host in settings.servers:
        try:
            return _login_on(settings, _server(settings, host), user, password)
        except (LDAPCommunicationError, OSError) as err:
            reasons.append(f"{host}: {_short(err)}")
        except LDAPException as err:
            # StartTLS refused, certificate rejected, ...: this server is unusable, try the next
            reasons.append(f"{host}: {_short(err)}")
    raise DirectoryUnavailable("; ".join(reasons) or "no LDAP server configured")


def _short(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0][:200]
