"""labhub.configure(c, ...): a whole lab wired into a JupyterHub config in one call.

Every option can also come from a ``LABHUB_<NAME>`` environment variable, so one
``jupyterhub_config.py`` serves a laptop and production. configure() only *sets*
values: calling it twice gives the same config, and lines after it win.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .certs import CertificateError, check_certificate


class LabConfigError(SystemExit):
    """A setting is wrong; the hub stops with this one sentence and no traceback."""

    def __init__(self, message: str):
        super().__init__(f"labhub: {message}")


@dataclass(frozen=True)
class Option:
    name: str
    kind: type
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "LABHUB_" + self.name.upper()


OPTIONS = [
    Option("spawner", str, "docker", "docker (one machine) or swarm (several machines)"),
    Option(
        "lab_root", str, "/srv/labhub", "host folder with personal_notebooks/ and shared_notebooks/"
    ),
    Option(
        "data_dir", str, "/srv/jupyterhub", "hub state: sqlite database, cookie secret, proxy pid"
    ),
    Option("image", str, "", "single-user image (default: the offline image labhub builds)"),
    Option(
        "allowed_images", list, [], "images a user may pick, comma-separated in the environment"
    ),
    Option("network", str, "host", "Docker network of the labs: host, bridge or a named network"),
    Option(
        "hub_connect_ip", str, "", "address the labs use to reach the hub (bridge / named networks)"
    ),
    Option("lab_uid", int, 2100, "uid owning every notebook"),
    Option("lab_gid", int, 2100, "gid of the lab group"),
    Option("uid_strategy", str, "direct", "direct or docker-stacks"),
    Option("mem_limit", str, "", "memory limit per lab, e.g. 4G"),
    Option("cpu_limit", float, 0.0, "CPU limit per lab (0: none)"),
    Option("ip", str, "127.0.0.1", "address the hub's proxy listens on (0.0.0.0 for everyone)"),
    Option("port", int, 0, "port of the hub (default 8443 with HTTPS, 8000 without)"),
    Option("ssl_cert", str, "", "HTTPS certificate (PEM)"),
    Option("ssl_key", str, "", "HTTPS private key (PEM, unencrypted)"),
    Option("admin_users", list, [], "hub admins, comma-separated in the environment"),
    Option("idle_timeout", int, 3600, "seconds of inactivity before a lab is stopped (0: never)"),
    Option("shutdown_on_logout", bool, True, "stop the user's lab when they log out"),
    Option("concurrent_spawn_limit", int, 100, "labs that may be starting at once"),
    Option("start_timeout", int, 300, "seconds a lab may take to start"),
    Option("auth_mode", str, "", "ldap or dummy (default: LabAuthenticator's environment rules)"),
    Option("dummy_password", str, "", "the shared password of dummy mode"),
    Option("ldap_servers", list, [], "LDAP servers in failover order, host or host:port"),
    Option("ldap_port", int, 0, "LDAP port (default 389, or 636 with ldaps)"),
    Option(
        "ldap_tls", str, "before_bind", "before_bind (StartTLS), on_connect (LDAPS) or insecure"
    ),
    Option("ldap_ca_file", str, "", "CA bundle of the LDAP servers"),
    Option("ldap_bind_dn_template", list, [], "DN templates with {username}"),
    Option("ldap_user_search_base", str, "", "base for lookup_dn searches"),
    Option("ldap_user_attribute", str, "", "uid (OpenLDAP) or sAMAccountName (AD)"),
    Option("ldap_search_user", str, "", "DN of the search account (turns on lookup_dn)"),
    Option("ldap_search_password", str, "", "password of the search account"),
    Option("ldap_allowed_groups", list, [], "group DNs whose members may log in"),
    Option("ldap_admin_groups", list, [], "group DNs whose members are hub admins"),
    Option("ldap_allow_all", bool, False, "let every directory user in (no group needed)"),
    Option("gateway_url", str, "", "Jupyter Enterprise Gateway for remote (e.g. Spark) kernels"),
    Option("gateway_auth_token", str, "", "token for the gateway"),
    Option("gateway_request_timeout", float, 0.0, "seconds per gateway request (0: default)"),
    Option("gateway_connect_timeout", float, 0.0, "seconds to connect to the gateway (0: default)"),
    Option("gateway_validate_cert", bool, True, "verify the gateway's TLS certificate"),
]
_BY_NAME = {o.name: o for o in OPTIONS}


def _parse(option: Option, raw: str) -> Any:
    if option.kind is bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise LabConfigError(f"{option.env} must be true or false, not {raw!r}.")
    if option.kind is list:
        separator = ";" if option.name.startswith("ldap_") and "=" in raw else ","
        return [item.strip() for item in raw.split(separator) if item.strip()]
    try:
        return option.kind(raw)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(option.kind, option.kind.__name__)
        raise LabConfigError(f"{option.env} must be {what}, not {raw!r}.") from None


def resolve_options(
    overrides: dict[str, Any], environ: dict[str, str] | None = None
) -> dict[str, Any]:
    """Defaults, then ``LABHUB_*`` variables, then keyword arguments; unknown names refused."""
    environ = os.environ if environ is None else environ
    unknown = sorted(set(overrides) - set(_BY_NAME))
    if unknown:
        raise LabConfigError(
            f"configure() got unknown options {unknown}; see labhub.configure.OPTIONS."
        )
    values = {}
    for option in OPTIONS:
        if option.name in overrides and overrides[option.name] is not None:
            values[option.name] = overrides[option.name]
        elif option.env in environ:
            values[option.name] = _parse(option, environ[option.env])
        else:
            values[option.name] = option.default
    return values


def _validate(v: dict[str, Any]) -> None:
    if v["spawner"] not in ("docker", "swarm"):
        raise LabConfigError(f"spawner must be 'docker' or 'swarm', not {v['spawner']!r}.")
    for key in ("lab_root", "data_dir"):
        if not os.path.isabs(v[key]):
            raise LabConfigError(f"{key} must be an absolute path, not {v[key]!r}.")
    for key in ("lab_uid", "lab_gid"):
        if v[key] <= 0:
            raise LabConfigError(
                f"{key} must be a positive id, not {v[key]}: lab files must not belong to root."
            )
    if v["uid_strategy"] not in ("direct", "docker-stacks"):
        raise LabConfigError(
            f"uid_strategy must be 'direct' or 'docker-stacks', not {v['uid_strategy']!r}."
        )
    if v["auth_mode"] not in ("", "ldap", "dummy"):
        raise LabConfigError(f"auth_mode must be 'ldap' or 'dummy', not {v['auth_mode']!r}.")
    if v["ldap_tls"] not in ("before_bind", "on_connect", "insecure"):
        raise LabConfigError(
            f"ldap_tls must be before_bind, on_connect or insecure, not {v['ldap_tls']!r}."
        )
    if bool(v["ssl_cert"]) != bool(v["ssl_key"]):
        raise LabConfigError("HTTPS needs both ssl_cert and ssl_key.")
    if v["ssl_cert"]:
        try:
            info = check_certificate(v["ssl_cert"], v["ssl_key"])
        except CertificateError as err:
            raise LabConfigError(str(err)) from None
        if info.days_left < 30:
            print(
                f"labhub: warning: the HTTPS certificate expires in {info.days_left:.0f} days",
                file=sys.stderr,
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
}


def _set_named(entries: list[dict], entry: dict) -> list[dict]:
    """``entries`` with the one named like ``entry`` replaced: applying twice adds nothing."""
    return [e for e in entries if e.get("name") != entry["name"]] + [entry]


def configure(c: Any, **options: Any) -> dict[str, Any]:
    """Wire a complete lab into the JupyterHub config ``c``; return the resolved options.

    Keyword names are those of :data:`OPTIONS`; each also reads ``LABHUB_<NAME>``.
    A wrong value stops the hub at start with one sentence.
    """
    from .image import DEFAULT_IMAGE

    v = resolve_options(options)
    _validate(v)

    # --- the hub ------------------------------------------------------------
    data_dir = Path(v["data_dir"])
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise LabConfigError(f"data_dir {data_dir} cannot be created ({err.strerror}).") from None
    c.JupyterHub.ip = v["ip"]
    c.JupyterHub.port = v["port"] or (8443 if v["ssl_cert"] else 8000)
    if v["ssl_cert"]:
        c.JupyterHub.ssl_cert = v["ssl_cert"]
        c.JupyterHub.ssl_key = v["ssl_key"]
    c.JupyterHub.cookie_secret_file = str(data_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.db_url = f"sqlite:///{data_dir / 'jupyterhub.sqlite'}"
    c.ConfigurableHTTPProxy.pid_file = str(data_dir / "jupyterhub-proxy.pid")
    # a hub restart must not stop the labs people are working in
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.shutdown_on_logout = v["shutdown_on_logout"]
    c.JupyterHub.concurrent_spawn_limit = v["concurrent_spawn_limit"]
    c.Spawner.start_timeout = v["start_timeout"]
    # on a busy machine a lab may take long to answer after its container started
    c.Spawner.http_timeout = v["start_timeout"]
    c.Spawner.default_url = "/lab"
    if v["admin_users"]:
        c.Authenticator.admin_users = set(v["admin_users"])

    # --- the labs -----------------------------------------------------------
    spawner = "LabSwarmSpawner" if v["spawner"] == "swarm" else "LabDockerSpawner"
    c.JupyterHub.spawner_class = f"labhub.{spawner}"
    s = c[spawner]
    s.lab_root = v["lab_root"]
    s.image = v["image"] or DEFAULT_IMAGE
    s.network_name = v["network"]
    s.lab_uid = v["lab_uid"]
    s.lab_gid = v["lab_gid"]
    s.uid_strategy = v["uid_strategy"]
    s.remove = True
    if v["allowed_images"]:
        s.allowed_images = {image: image for image in v["allowed_images"]}
    if v["mem_limit"]:
        s.mem_limit = v["mem_limit"]
    if v["cpu_limit"]:
        s.cpu_limit = v["cpu_limit"]
    if v["network"] == "host":
        c.JupyterHub.hub_ip = "127.0.0.1"
    else:
        # labs on a Docker network reach the hub through that network, not loopback
        c.JupyterHub.hub_ip = "0.0.0.0"
        c.JupyterHub.hub_connect_ip = v["hub_connect_ip"] or (
            "172.17.0.1" if v["network"] == "bridge" else "jupyterhub"
        )
    if v["gateway_url"]:
        s.gateway_validate_cert = v["gateway_validate_cert"]
        for option in (
            "gateway_url",
            "gateway_auth_token",
            "gateway_request_timeout",
            "gateway_connect_timeout",
        ):
            if v[option]:
                s[option] = v[option]

    # --- login --------------------------------------------------------------
    c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
    a = c.LabAuthenticator
    if v["auth_mode"]:
        a.mode = v["auth_mode"]
    if v["dummy_password"]:
        a.dummy_password = v["dummy_password"]
    if v["ldap_servers"]:
        a.server_addresses = v["ldap_servers"]
        a.server_address = v["ldap_servers"][0].rsplit(":", 1)[0]
        a.tls_strategy = v["ldap_tls"]
        for option, trait in _LDAP_TRAITS.items():
            if v[option]:
                a[trait] = v[option]
        if v["ldap_search_user"]:
            a.lookup_dn = True
            a.lookup_dn_search_user = v["ldap_search_user"]
            a.lookup_dn_search_password = v["ldap_search_password"]
            a.lookup_dn_user_dn_attribute = v["ldap_user_attribute"] or "uid"
        if v["ldap_allow_all"]:
            c.Authenticator.allow_all = True

    # --- idle culling -------------------------------------------------------
    if v["idle_timeout"] > 0:
        culler = {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={v['idle_timeout']}",
            ],
        }
        role = {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
        c.JupyterHub.services = _set_named(list(c.JupyterHub.get("services", [])), culler)
        c.JupyterHub.load_roles = _set_named(list(c.JupyterHub.get("load_roles", [])), role)
    return v
