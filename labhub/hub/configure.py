"""labhub.configure(c, ...): a whole lab wired into a JupyterHub config in one call.

Every option can also come from a ``LABHUB_<NAME>`` environment variable, so one
``jupyterhub_config.py`` serves a laptop and production. The options, their
defaults and allowed values are in :mod:`labhub.hub.options`.

configure() fills in, it never clobbers: an option given as a keyword argument or
in ``LABHUB_*`` is written; everything else (defaults, and values derived from
other options such as the port or ``hub_ip``) is written only where the config
has no value yet, so lines above the call stay, lines below it win, and calling
it twice gives the same config.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from traitlets.config import Config, LazyConfigValue

from labhub.cli.certs import CERT_RENEW_DAYS, CertificateError, check_certificate
from labhub.engines.network import LabNetworkError, gateway_address
from labhub.hub.options import (
    DEFAULT_LDAP_TLS,
    DEFAULT_NETWORKS,
    HOST_HTTP_PORT,
    HOST_HTTPS_PORT,
    HOST_HUB_PORT,
    HOST_PROXY_API_PORT,
    HTTP_PORT,
    HTTPS_PORT,
    OIDC,
    OPTIONS,
    SPAWNER_CLASSES,
    Option,
    OptionError,
    auth_mode,
    resolve,
    spawner_kind,
)
from labhub.lab.teams import team_folders_value

__all__ = ["OPTIONS", "LabConfigError", "Option", "configure", "resolve_options"]


class LabConfigError(SystemExit):
    """A setting is wrong; the hub stops with this one sentence and no traceback."""

    def __init__(self, message: str):
        super().__init__(f"labhub: {message}")


def resolve_options(
    overrides: dict[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Defaults, then ``LABHUB_*`` variables, then keyword arguments; unknown names refused."""
    try:
        values, _ = resolve(overrides, os.environ if environ is None else environ)
    except OptionError as err:
        raise LabConfigError(str(err)) from None
    return values


def _validate(v: dict[str, Any]) -> None:
    for key in ("lab_root", "data_dir"):
        if not os.path.isabs(v[key]):
            raise LabConfigError(f"{key} must be an absolute path, not {v[key]!r}.")
    for key in ("lab_uid", "lab_gid"):
        if v[key] <= 0:
            raise LabConfigError(
                f"{key} must be a positive id, not {v[key]}: lab files must not belong to root."
            )
    if bool(v["ssl_cert"]) != bool(v["ssl_key"]):
        raise LabConfigError("HTTPS needs both ssl_cert and ssl_key.")
    if v["ssl_cert"]:
        try:
            info = check_certificate(v["ssl_cert"], v["ssl_key"])
        except CertificateError as err:
            raise LabConfigError(str(err)) from None
        if info.days_left < CERT_RENEW_DAYS:
            print(
                f"labhub: warning: the HTTPS certificate expires in {info.days_left:.0f} days",
                file=sys.stderr,
            )
    if v["named_server_limit"] < 0:
        raise LabConfigError(
            f"named_server_limit must be 0 (no limit) or more, not {v['named_server_limit']}."
        )
    if not 0 <= v["port"] <= 65535:
        raise LabConfigError(f"port must be between 1 and 65535, not {v['port']}.")


#: configure() options copied to the LabAuthenticator trait of the same meaning, when set.
_LDAP_TRAITS = {
    "ldap_port": "server_port",
    "ldap_ca_file": "tls_ca_file",
    "ldap_bind_dn_template": "bind_dn_template",
    "ldap_user_search_base": "user_search_base",
    "ldap_user_attribute": "user_attribute",
    "ldap_allowed_groups": "allowed_groups",
    "ldap_admin_groups": "admin_groups",
    "ldap_group_search_base": "group_search_base",
}

#: parent classes whose section also configures a trait: c.Spawner.mem_limit reaches LabDockerSpawner
_PARENTS = {
    "LabDockerSpawner": ("DockerSpawner", "Spawner"),
    "LabSwarmSpawner": ("SwarmSpawner", "DockerSpawner", "Spawner"),
    "LabAuthenticator": ("LDAPAuthenticator", "Authenticator"),
}

_IDLE_CULLER = "idle-culler"


class _Writer:
    """Writes into ``c`` by configure()'s rule: explicit options set, everything else fills in."""

    def __init__(self, c: Config, explicit: set[str]):
        self.c = c
        self.explicit = explicit

    def has(self, section: str, name: str) -> bool:
        """True when the admin (or an earlier configure()) gave ``section.name`` a value."""
        return any(f"{s}.{name}" in self.c for s in (section, *_PARENTS.get(section, ())))

    def put(self, section: str, name: str, value: Any, option: str | None = None) -> None:
        """Set ``section.name`` if ``option`` was given explicitly, else only where it is unset."""
        if (option is not None and option in self.explicit) or not self.has(section, name):
            self.c[section][name] = value

    def current(self, section: str, name: str, default: Any = None) -> Any:
        if f"{section}.{name}" not in self.c:
            return default
        value = self.c[section][name]
        if isinstance(value, LazyConfigValue):  # c.JupyterHub.services.append(...) above the call
            return value.get_value(default)
        return value


def _set_named(entries: list[dict], entry: dict) -> list[dict]:
    """``entries`` with the one named like ``entry`` replaced: applying twice adds nothing."""
    return [e for e in entries if e.get("name") != entry["name"]] + [entry]


def _idle_culler(w: _Writer, timeout: int) -> None:
    services = list(w.current("JupyterHub", "services", []))
    roles = list(w.current("JupyterHub", "load_roles", []))
    given = "idle_timeout" in w.explicit
    if timeout <= 0:
        if given:  # an explicit 0 turns culling off, also after an earlier configure()
            w.c.JupyterHub.services = [s for s in services if s.get("name") != _IDLE_CULLER]
            w.c.JupyterHub.load_roles = [r for r in roles if r.get("name") != _IDLE_CULLER]
        return
    if not given and any(s.get("name") == _IDLE_CULLER for s in services):
        return  # the admin's own culler, or ours from an earlier call, stays
    culler = {
        "name": _IDLE_CULLER,
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={timeout}"],
    }
    role = {
        "name": _IDLE_CULLER,
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": [_IDLE_CULLER],
    }
    w.c.JupyterHub.services = _set_named(services, culler)
    w.c.JupyterHub.load_roles = _set_named(roles, role)


def _acme(w: _Writer, v: dict[str, Any]) -> None:
    """Certificates from an ACME CA: LabAcme's settings, and the hub's HTTPS files where it keeps them."""
    from labhub.certs.store import acme_files

    domain = v["acme_domain"]
    if v["ssl_cert"]:
        raise LabConfigError(
            "Set acme_domain or ssl_cert, not both: with acme_domain the hub obtains its own "
            "certificate, which ssl_cert would replace."
        )
    if "/" in domain or ":" in domain or domain.startswith("*") or "." not in domain:
        raise LabConfigError(
            f"acme_domain must be the hub's DNS name such as lab.example.org, not {domain!r} "
            "(no scheme, port or wildcard: HTTP-01 cannot validate a wildcard)."
        )
    if not v["acme_directory"].startswith(("https://", "http://")):
        raise LabConfigError(f"acme_directory must be a URL, not {v['acme_directory']!r}.")
    if v["acme_ca_bundle"] and not os.path.isfile(v["acme_ca_bundle"]):
        raise LabConfigError(f"acme_ca_bundle {v['acme_ca_bundle']} is not a file.")
    if not 1 <= v["acme_challenge_port"] <= 65535:
        raise LabConfigError(
            f"acme_challenge_port must be between 1 and 65535, not {v['acme_challenge_port']}."
        )
    for key in ("acme_renew_days", "acme_check_interval"):
        if v[key] <= 0:
            raise LabConfigError(f"{key} must be more than 0, not {v[key]}.")
    files = acme_files(v["data_dir"])
    w.put("JupyterHub", "ssl_cert", str(files.cert), "acme_domain")
    w.put("JupyterHub", "ssl_key", str(files.key), "acme_domain")
    w.put("LabAcme", "data_dir", v["data_dir"], "acme_domain")
    for option in (
        "acme_domain",
        "acme_email",
        "acme_directory",
        "acme_ca_bundle",
        "acme_challenge_port",
        "acme_renew_days",
        "acme_check_interval",
    ):
        w.put("LabAcme", option.removeprefix("acme_"), v[option], option)


def _sharing(w: _Writer, enabled: bool, within_teams: bool) -> None:
    """JupyterHub's shares turned on for every user's lab, held to their teams by the hub."""
    from labhub.hub.sharing import LAB_TOKEN_SCOPES, SHARE_SCOPES, user_role

    roles = list(w.current("JupyterHub", "load_roles", []))
    mine = next((r for r in roles if r.get("name") == "user"), None)
    scopes = list((mine or {}).get("scopes") or ["self"])
    if enabled:
        w.c.JupyterHub.load_roles = _set_named(roles, {**(mine or {}), **user_role(scopes)})
        w.put("Spawner", "oauth_client_allowed_scopes", list(LAB_TOKEN_SCOPES), "sharing")
    elif "sharing" in w.explicit and mine is not None:
        kept = [scope for scope in scopes if scope not in SHARE_SCOPES]
        w.c.JupyterHub.load_roles = _set_named(roles, {**mine, "scopes": kept})
    w.put("LabSharing", "within_teams", within_teams, "share_within_teams")


def configure(c: Any, **options: Any) -> dict[str, Any]:
    """Wire a complete lab into the JupyterHub config ``c``; return the resolved options.

    Keyword names are those of :data:`labhub.hub.options.OPTIONS`; each also reads
    ``LABHUB_<NAME>``. Given options are written; defaults and derived values fill in
    only what ``c`` does not set yet. A wrong value stops the hub at start with one
    sentence.
    """
    from labhub.cli.image import DEFAULT_IMAGE

    try:
        v, explicit = resolve(options, os.environ)
        # a mode written above the call counts like any other setting the admin made
        configured = v["auth_mode"] or ("LabAuthenticator.mode" in c and c.LabAuthenticator.mode)
        v["auth_mode"] = auth_mode(configured, os.environ)
    except OptionError as err:
        raise LabConfigError(str(err)) from None
    _validate(v)
    w = _Writer(c, explicit)

    # --- the hub ------------------------------------------------------------
    data_dir = Path(v["data_dir"])
    hub_state = {
        ("JupyterHub", "cookie_secret_file"): str(data_dir / "jupyterhub_cookie_secret"),
        ("JupyterHub", "db_url"): f"sqlite:///{data_dir / 'jupyterhub.sqlite'}",
        ("ConfigurableHTTPProxy", "pid_file"): str(data_dir / "jupyterhub-proxy.pid"),
    }
    if "data_dir" in explicit or not all(w.has(*key) for key in hub_state):
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise LabConfigError(
                f"data_dir {data_dir} cannot be created ({err.strerror})."
            ) from None
    for (section, name), value in hub_state.items():
        w.put(section, name, value, "data_dir")
    w.put("JupyterHub", "ip", v["ip"], "ip")
    if v["ssl_cert"]:
        w.put("JupyterHub", "ssl_cert", v["ssl_cert"], "ssl_cert")
        w.put("JupyterHub", "ssl_key", v["ssl_key"], "ssl_key")
    if v["acme_domain"]:
        _acme(w, v)
    # a hub restart must not stop the labs people are working in
    w.put("JupyterHub", "cleanup_servers", False)
    w.put("JupyterHub", "shutdown_on_logout", v["shutdown_on_logout"], "shutdown_on_logout")
    w.put("JupyterHub", "allow_named_servers", v["named_servers"], "named_servers")
    if v["named_server_limit"]:
        w.put(
            "JupyterHub",
            "named_server_limit_per_user",
            v["named_server_limit"],
            "named_server_limit",
        )
    w.put(
        "JupyterHub",
        "concurrent_spawn_limit",
        v["concurrent_spawn_limit"],
        "concurrent_spawn_limit",
    )
    w.put("Spawner", "start_timeout", v["start_timeout"], "start_timeout")
    # on a busy machine a lab may take long to answer after its container started
    w.put("Spawner", "http_timeout", v["start_timeout"], "start_timeout")
    w.put("Spawner", "default_url", "/lab")
    if v["admin_users"]:
        w.put("Authenticator", "admin_users", set(v["admin_users"]), "admin_users")

    # --- the labs -----------------------------------------------------------
    kind = v["spawner"]
    if "spawner" not in explicit:
        # a lab spawner chosen above the call decides which section the lab settings go to
        kind = spawner_kind(w.current("JupyterHub", "spawner_class")) or kind
    w.put("JupyterHub", "spawner_class", SPAWNER_CLASSES[kind], "spawner")
    spawner = SPAWNER_CLASSES[kind].rsplit(".", 1)[-1]
    # the network follows the spawner: a Swarm service cannot join the Docker labs' bridge
    v["network"] = v["network"] or DEFAULT_NETWORKS[kind]
    w.put(spawner, "lab_root", v["lab_root"], "lab_root")
    w.put(spawner, "image", v["image"] or DEFAULT_IMAGE, "image")
    w.put(spawner, "network_name", v["network"], "network")
    w.put(spawner, "lab_uid", v["lab_uid"], "lab_uid")
    w.put(spawner, "lab_gid", v["lab_gid"], "lab_gid")
    w.put(spawner, "uid_strategy", v["uid_strategy"], "uid_strategy")
    w.put(spawner, "remove", True)
    if v["allowed_images"]:
        w.put(spawner, "allowed_images", {i: i for i in v["allowed_images"]}, "allowed_images")
    if v["mem_limit"]:
        w.put(spawner, "mem_limit", v["mem_limit"], "mem_limit")
    if v["cpu_limit"]:
        w.put(spawner, "cpu_limit", v["cpu_limit"], "cpu_limit")
    https = bool(w.current("JupyterHub", "ssl_cert", ""))
    host = v["network"] == "host"
    if v["port"]:
        w.put("JupyterHub", "port", v["port"], "port")
    elif host:
        w.put("JupyterHub", "port", HOST_HTTPS_PORT if https else HOST_HTTP_PORT)
    else:
        w.put("JupyterHub", "port", HTTPS_PORT if https else HTTP_PORT)
    if host:
        w.put("JupyterHub", "hub_ip", "127.0.0.1", "network")
        # labs share the hub's loopback: ports below 1024 are ones no lab can bind while the
        # hub or the proxy restarts (labhub.hub.startup.check_hub_ports refuses others)
        w.put("JupyterHub", "hub_port", HOST_HUB_PORT)
        w.put("ConfigurableHTTPProxy", "api_url", f"http://127.0.0.1:{HOST_PROXY_API_PORT}")
    else:
        # the hub listens on the labs' bridge only (its gateway address), never on 0.0.0.0
        w.put(spawner, "network_subnet", v["network_subnet"], "network_subnet")
        if v["network"] == "bridge":
            gateway = v["hub_connect_ip"] or "172.17.0.1"
        else:
            try:
                gateway = gateway_address(w.current(spawner, "network_subnet"))
            except LabNetworkError as err:
                raise LabConfigError(str(err)) from None
        which = "network_subnet" if "network_subnet" in explicit else "network"
        w.put("JupyterHub", "hub_ip", gateway, which)
        w.put("JupyterHub", "hub_connect_ip", gateway, which)
    if v["hub_connect_ip"]:
        w.put("JupyterHub", "hub_connect_ip", v["hub_connect_ip"], "hub_connect_ip")
    for option in (
        "gateway_url",
        "gateway_auth_token",
        "gateway_request_timeout",
        "gateway_connect_timeout",
        "gateway_validate_cert",
    ):
        # the defaults live in the traits (from labhub.hub.options); only given values are written
        if option in explicit:
            w.put(spawner, option, v[option], option)

    if "team_folders" in explicit:
        try:
            teams = team_folders_value(v["team_folders"])
        except ValueError as err:
            raise LabConfigError(str(err)) from None
        w.put(spawner, "team_folders", teams, "team_folders")

    # the lab's start-up (settings check, labs' network, warm pool) runs from the proxy,
    # so it does not depend on which authenticator a line below this call chooses
    w.put("JupyterHub", "proxy_class", "labhub.hub.proxy.LabProxy")

    # --- login --------------------------------------------------------------
    w.put("JupyterHub", "authenticator_class", "labhub.LabAuthenticator")
    a = "LabAuthenticator"
    w.put(a, "mode", v["auth_mode"], "auth_mode")
    if v["dummy_password"]:
        w.put(a, "dummy_password", v["dummy_password"], "dummy_password")
    if v["ldap_servers"]:
        w.put(a, "server_addresses", v["ldap_servers"], "ldap_servers")
        w.put(a, "server_address", v["ldap_servers"][0].rsplit(":", 1)[0], "ldap_servers")
        w.put(a, "tls_strategy", v["ldap_tls"] or DEFAULT_LDAP_TLS, "ldap_tls")
        for option, trait in _LDAP_TRAITS.items():
            if v[option]:
                w.put(a, trait, v[option], option)
        if v["ldap_search_user"]:
            w.put(a, "lookup_dn", True, "ldap_search_user")
            w.put(a, "lookup_dn_search_user", v["ldap_search_user"], "ldap_search_user")
            w.put(a, "lookup_dn_search_password", v["ldap_search_password"], "ldap_search_password")
            w.put(
                a,
                "lookup_dn_user_dn_attribute",
                v["ldap_user_attribute"] or "uid",
                "ldap_user_attribute" if v["ldap_user_attribute"] else None,
            )
        if v["ldap_allow_all"]:
            w.put("Authenticator", "allow_all", True, "ldap_allow_all")

    # --- single sign-on and the lab's login page (every mode) ---------------
    _oidc_and_login_page(w, v)

    # --- idle culling -------------------------------------------------------
    _idle_culler(w, v["idle_timeout"])

    # --- usage records, the usage page and the folder notice (labhub.usage) ------------
    _usage(w, spawner, data_dir, v["personal_folder_soft_limit"])

    # --- sharing a lab with a teammate ---------------------------------------
    _sharing(w, v["sharing"], v["share_within_teams"])
    return v


#: configure() options of OIDC mode, each a LabAuthenticator trait of the same name
_OIDC_TRAITS = (
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_scopes",
    "oidc_username_claim",
    "oidc_groups_claim",
    "oidc_allowed_groups",
    "oidc_admin_groups",
)


def _oidc_and_login_page(w: _Writer, v: dict[str, Any]) -> None:
    """OIDC mode's traits, the public URL, and the lab's name, message and logo on the login page."""
    from labhub.auth.oidc_login import callback_from_public_url
    from labhub.paths import hub_pages_dir

    a = "LabAuthenticator"
    for option in _OIDC_TRAITS:
        if option in w.explicit:
            w.put(a, option, v[option], option)
    if "oidc_provider_name" in w.explicit:
        w.put(a, "login_service", v["oidc_provider_name"], "oidc_provider_name")
    if v["public_url"]:
        w.put("JupyterHub", "public_url", v["public_url"], "public_url")
        w.put(a, "oidc_callback_url", callback_from_public_url(v["public_url"]), "public_url")
    if v["auth_mode"] == OIDC:
        # tokens and each user's provider account (sub) are kept encrypted
        w.put("Authenticator", "enable_auth_state", True)
    if v["logo"]:
        if not os.path.isfile(v["logo"]):
            raise LabConfigError(f"logo {v['logo']} is not a file.")
        w.put("JupyterHub", "logo_file", v["logo"], "logo")
    # labhub's login.html extends JupyterHub's; an admin's own template folders come first
    pages = str(hub_pages_dir())
    paths = list(w.current("JupyterHub", "template_paths", []))
    if pages not in paths:
        w.c.JupyterHub.template_paths = [*paths, pages]
    page_vars = dict(w.current("JupyterHub", "template_vars", {}))
    for key, value in (
        ("lab_name", v["lab_name"]),
        ("login_message", v["login_message"]),
        ("lab_logo", bool(v["logo"])),
    ):
        option = "logo" if key == "lab_logo" else key
        if option in w.explicit or key not in page_vars:
            page_vars[key] = value
    w.c.JupyterHub.template_vars = page_vars


def _usage(w: _Writer, spawner: str, data_dir: Path, soft_limit: str) -> None:
    from jupyterhub.traitlets import ByteSpecification

    from labhub.usage.page import wire_usage_page
    from labhub.usage.store import RECORDS_FILE

    w.put(spawner, "usage_records_file", str(data_dir / RECORDS_FILE), "data_dir")
    if soft_limit:
        w.put(spawner, "personal_folder_soft_limit", soft_limit, "personal_folder_soft_limit")
    limit = w.current(spawner, "personal_folder_soft_limit")
    try:
        limit = None if limit in (None, "") else ByteSpecification().validate(None, limit)
    except Exception:
        raise LabConfigError(
            f"personal_folder_soft_limit must be a size such as 20G or 512M, not {limit!r}."
        ) from None
    wire_usage_page(w.c, w.current(spawner, "usage_records_file"), limit)
