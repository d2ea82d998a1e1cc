"""The one table of labhub's settings: defaults, allowed values, environment names; pure, no I/O.

Nothing here reads the environment, touches the disk or imports JupyterHub:
callers pass ``os.environ`` in. The traits, :func:`labhub.configure`,
``labhub check`` and ``labhub run`` import their defaults and allowed values
from here, so they cannot disagree.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# --- values written once ------------------------------------------------------

DEFAULT_LAB_ROOT = "/srv/labhub"
DEFAULT_DATA_DIR = "/srv/jupyterhub"
DEFAULT_LAB_UID = 2100
DEFAULT_LAB_GID = 2100
UID_STRATEGIES = ("direct", "docker-stacks")
DEFAULT_UID_STRATEGY = "direct"
SPAWNERS = ("docker", "swarm")
DEFAULT_SPAWNER = "docker"
#: the spawner_class configure() writes for each ``spawner``, and the entry-point alias of each
SPAWNER_CLASSES = {"docker": "labhub.LabDockerSpawner", "swarm": "labhub.LabSwarmSpawner"}
SPAWNER_ALIASES = {"lab-docker": "docker", "lab-swarm": "swarm"}
#: the labs' own isolated bridge network (labhub.engines.network), and its subnet: the hub listens on its gateway
DEFAULT_NETWORK = "labhub-labs"
DEFAULT_NETWORK_SUBNET = "10.213.0.0/20"
#: each spawner's default network: on Swarm the host's, since a service cannot join a local bridge
DEFAULT_NETWORKS = {"docker": DEFAULT_NETWORK, "swarm": "host"}
DEFAULT_IP = "127.0.0.1"
HTTPS_PORT = 8443
HTTP_PORT = 8000
#: with labs on host networking (network="host", Swarm's default) the hub's ports are below 1024,
#: where no lab (no CAP_NET_BIND_SERVICE) can bind them while the hub or the proxy restarts
HOST_HUB_PORT = 881
HOST_PROXY_API_PORT = 801
HOST_HTTPS_PORT = 443
HOST_HTTP_PORT = 80
AUTH_MODES = ("ldap", "dummy", "oidc")
LDAP, DUMMY, OIDC = AUTH_MODES
LDAP_TLS_MODES = ("before_bind", "on_connect", "insecure")
DEFAULT_LDAP_TLS = "before_bind"
#: how the hub's start-up line names each TLS mode
LDAP_TLS_LABELS = {"before_bind": "StartTLS", "on_connect": "LDAPS", "insecure": "no TLS"}
DEFAULT_LDAP_CONNECT_TIMEOUT = 5.0
DEFAULT_LDAP_RESPONSE_TIMEOUT = 10.0
LDAP_PORT = 389
LDAPS_PORT = 636
DEFAULT_IDLE_TIMEOUT = 3600
DEFAULT_CONCURRENT_SPAWN_LIMIT = 100
DEFAULT_START_TIMEOUT = 300
DEFAULT_GATEWAY_REQUEST_TIMEOUT = 30.0
DEFAULT_GATEWAY_CONNECT_TIMEOUT = 5.0
DEFAULT_OIDC_SCOPES = ("openid", "profile", "email")
DEFAULT_OIDC_USERNAME_CLAIM = "preferred_username"
DEFAULT_OIDC_GROUPS_CLAIM = "groups"
DEFAULT_OIDC_PROVIDER_NAME = "single sign-on"
#: ACME (labhub.certs): Let's Encrypt's production directory, where the CA asks for HTTP-01, when to renew
DEFAULT_ACME_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
DEFAULT_ACME_CHALLENGE_PORT = 80
DEFAULT_ACME_RENEW_DAYS = 30.0
DEFAULT_ACME_CHECK_INTERVAL = 12 * 3600.0
#: how a boolean environment variable (LABHUB_*, DEV_MODE) says yes or no
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


class OptionError(ValueError):
    """A configure() option or its environment variable is wrong; the message is one sentence."""


@dataclass(frozen=True)
class Option:
    """One configure() option: what it is, where it comes from, and which traits it sets."""

    name: str
    kind: type
    default: Any
    help: str
    sets: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        """The environment variable that sets this option when no keyword argument does."""
        return "LABHUB_" + self.name.upper()


_SPAWNER = "<spawner>"  # stands for LabDockerSpawner or LabSwarmSpawner, whichever is chosen
_HUB, _AUTH = "JupyterHub", "LabAuthenticator"

OPTIONS: tuple[Option, ...] = (
    Option(
        "spawner",
        str,
        DEFAULT_SPAWNER,
        "docker (one machine) or swarm (several machines)",
        (f"{_HUB}.spawner_class",),
        SPAWNERS,
    ),
    Option(
        "lab_root",
        str,
        DEFAULT_LAB_ROOT,
        "host folder with personal_notebooks/ and shared_notebooks/",
        (f"{_SPAWNER}.lab_root",),
    ),
    Option(
        "data_dir",
        str,
        DEFAULT_DATA_DIR,
        "hub state: sqlite database, cookie secret, proxy pid",
        (
            f"{_HUB}.cookie_secret_file",
            f"{_HUB}.db_url",
            "ConfigurableHTTPProxy.pid_file",
        ),
    ),
    Option(
        "image",
        str,
        "",
        "single-user image (default: the offline image labhub builds)",
        (f"{_SPAWNER}.image",),
    ),
    Option(
        "allowed_images",
        list,
        [],
        "images a user may pick, comma-separated in the environment",
        (f"{_SPAWNER}.allowed_images",),
    ),
    Option(
        "network",
        str,
        "",
        "network of the labs: a name (labhub makes it, labs isolated from each other) or host "
        f"(empty: {DEFAULT_NETWORKS['docker']} with docker, {DEFAULT_NETWORKS['swarm']} with swarm)",
        (f"{_SPAWNER}.network_name", f"{_HUB}.hub_ip", f"{_HUB}.hub_connect_ip"),
    ),
    Option(
        "network_subnet",
        str,
        DEFAULT_NETWORK_SUBNET,
        "private subnet of the labs' network; the hub listens on its first address",
        (f"{_SPAWNER}.network_subnet", f"{_HUB}.hub_ip", f"{_HUB}.hub_connect_ip"),
    ),
    Option(
        "hub_connect_ip",
        str,
        "",
        "address the labs use to reach the hub (bridge / named networks)",
        (f"{_HUB}.hub_connect_ip",),
    ),
    Option("lab_uid", int, DEFAULT_LAB_UID, "uid owning every notebook", (f"{_SPAWNER}.lab_uid",)),
    Option("lab_gid", int, DEFAULT_LAB_GID, "gid of the lab group", (f"{_SPAWNER}.lab_gid",)),
    Option(
        "uid_strategy",
        str,
        DEFAULT_UID_STRATEGY,
        "direct or docker-stacks",
        (f"{_SPAWNER}.uid_strategy",),
        UID_STRATEGIES,
    ),
    Option("mem_limit", str, "", "memory limit per lab, e.g. 4G", (f"{_SPAWNER}.mem_limit",)),
    Option("cpu_limit", float, 0.0, "CPU limit per lab (0: none)", (f"{_SPAWNER}.cpu_limit",)),
    Option(
        "ip",
        str,
        DEFAULT_IP,
        "address the hub's proxy listens on (0.0.0.0 for everyone)",
        (f"{_HUB}.ip",),
    ),
    Option(
        "port",
        int,
        0,
        f"port of the hub (0: {HTTPS_PORT} with HTTPS, {HTTP_PORT} without; "
        f"{HOST_HTTPS_PORT} and {HOST_HTTP_PORT} with labs on host networking)",
        (f"{_HUB}.port",),
    ),
    Option("ssl_cert", str, "", "HTTPS certificate (PEM)", (f"{_HUB}.ssl_cert",)),
    Option("ssl_key", str, "", "HTTPS private key (PEM, unencrypted)", (f"{_HUB}.ssl_key",)),
    Option(
        "admin_users",
        list,
        [],
        "hub admins, comma-separated in the environment",
        ("Authenticator.admin_users",),
    ),
    Option(
        "idle_timeout",
        int,
        DEFAULT_IDLE_TIMEOUT,
        "seconds of inactivity before a lab is stopped (0: never)",
        (f"{_HUB}.services", f"{_HUB}.load_roles"),
    ),
    Option(
        "shutdown_on_logout",
        bool,
        True,
        "stop the user's lab when they log out",
        (f"{_HUB}.shutdown_on_logout",),
    ),
    Option(
        "named_servers",
        bool,
        False,
        "let each user run several labs side by side, each its own container",
        (f"{_HUB}.allow_named_servers",),
    ),
    Option(
        "named_server_limit",
        int,
        0,
        "most labs one user may run at once with named_servers (0: no limit)",
        (f"{_HUB}.named_server_limit_per_user",),
    ),
    Option(
        "concurrent_spawn_limit",
        int,
        DEFAULT_CONCURRENT_SPAWN_LIMIT,
        "labs that may be starting at once",
        (f"{_HUB}.concurrent_spawn_limit",),
    ),
    Option(
        "start_timeout",
        int,
        DEFAULT_START_TIMEOUT,
        "seconds a lab may take to start",
        ("Spawner.start_timeout", "Spawner.http_timeout"),
    ),
    Option(
        "auth_mode",
        str,
        "",
        "ldap, dummy or oidc (empty: LABHUB_AUTH_MODE, else DEV_MODE=true for dummy, else ldap)",
        (f"{_AUTH}.mode",),
        AUTH_MODES,
    ),
    Option(
        "dummy_password",
        str,
        "",
        "the shared password of dummy mode",
        (f"{_AUTH}.dummy_password",),
    ),
    Option(
        "ldap_servers",
        list,
        [],
        "LDAP servers in failover order, host or host:port",
        (f"{_AUTH}.server_addresses", f"{_AUTH}.server_address"),
    ),
    Option(
        "ldap_port",
        int,
        0,
        f"LDAP port (0: {LDAP_PORT}, or {LDAPS_PORT} with on_connect)",
        (f"{_AUTH}.server_port",),
    ),
    Option(
        "ldap_tls",
        str,
        DEFAULT_LDAP_TLS,
        "before_bind (StartTLS), on_connect (LDAPS) or insecure",
        (f"{_AUTH}.tls_strategy",),
        LDAP_TLS_MODES,
    ),
    Option("ldap_ca_file", str, "", "CA bundle of the LDAP servers", (f"{_AUTH}.tls_ca_file",)),
    Option(
        "ldap_bind_dn_template",
        list,
        [],
        "DN templates with {username}",
        (f"{_AUTH}.bind_dn_template",),
    ),
    Option(
        "ldap_user_search_base",
        str,
        "",
        "base for lookup_dn searches",
        (f"{_AUTH}.user_search_base",),
    ),
    Option(
        "ldap_user_attribute",
        str,
        "",
        "uid (OpenLDAP) or sAMAccountName (AD)",
        (f"{_AUTH}.user_attribute", f"{_AUTH}.lookup_dn_user_dn_attribute"),
    ),
    Option(
        "ldap_search_user",
        str,
        "",
        "DN of the search account (turns on lookup_dn)",
        (f"{_AUTH}.lookup_dn", f"{_AUTH}.lookup_dn_search_user"),
    ),
    Option(
        "ldap_search_password",
        str,
        "",
        "password of the search account",
        (f"{_AUTH}.lookup_dn_search_password",),
    ),
    Option(
        "ldap_allowed_groups",
        list,
        [],
        "group DNs whose members may log in",
        (f"{_AUTH}.allowed_groups",),
    ),
    Option(
        "ldap_admin_groups",
        list,
        [],
        "group DNs whose members are hub admins",
        (f"{_AUTH}.admin_groups",),
    ),
    Option(
        "ldap_group_search_base",
        str,
        "",
        "where directory groups live; members' groups become hub groups at login",
        (f"{_AUTH}.group_search_base",),
    ),
    Option(
        "ldap_allow_all",
        bool,
        False,
        "let every directory user in (no group needed)",
        ("Authenticator.allow_all",),
    ),
    Option(
        "gateway_url",
        str,
        "",
        "Jupyter Enterprise Gateway for remote (e.g. Spark) kernels",
        (f"{_SPAWNER}.gateway_url",),
    ),
    Option(
        "gateway_auth_token",
        str,
        "",
        "token for the gateway",
        (f"{_SPAWNER}.gateway_auth_token",),
    ),
    Option(
        "gateway_request_timeout",
        float,
        DEFAULT_GATEWAY_REQUEST_TIMEOUT,
        "seconds per gateway request",
        (f"{_SPAWNER}.gateway_request_timeout",),
    ),
    Option(
        "gateway_connect_timeout",
        float,
        DEFAULT_GATEWAY_CONNECT_TIMEOUT,
        "seconds to connect to the gateway",
        (f"{_SPAWNER}.gateway_connect_timeout",),
    ),
    Option(
        "gateway_validate_cert",
        bool,
        True,
        "verify the gateway's TLS certificate",
        (f"{_SPAWNER}.gateway_validate_cert",),
    ),
    # --- team folders ---
    Option(
        "team_folders",
        list,
        [],
        "a folder per team: true for every hub group of the user, or group names and "
        "shell-style patterns, comma-separated in the environment",
        (f"{_SPAWNER}.team_folders",),
    ),
    # --- single sign-on (OpenID Connect mode) and the lab's name on the login page ---
    Option(
        "oidc_issuer",
        str,
        "",
        "OpenID provider's issuer URL; its /.well-known/openid-configuration is read",
        (f"{_AUTH}.oidc_issuer",),
    ),
    Option(
        "oidc_client_id",
        str,
        "",
        "this hub's client id at the provider",
        (f"{_AUTH}.oidc_client_id",),
    ),
    Option(
        "oidc_client_secret",
        str,
        "",
        "this hub's client secret at the provider (a secret: keep it in .env)",
        (f"{_AUTH}.oidc_client_secret",),
    ),
    Option(
        "oidc_scopes",
        list,
        list(DEFAULT_OIDC_SCOPES),
        "scopes asked for, space- or comma-separated in the environment",
        (f"{_AUTH}.oidc_scopes",),
    ),
    Option(
        "oidc_username_claim",
        str,
        DEFAULT_OIDC_USERNAME_CLAIM,
        "claim that gives the hub username (email only when email_verified)",
        (f"{_AUTH}.oidc_username_claim",),
    ),
    Option(
        "oidc_groups_claim",
        str,
        DEFAULT_OIDC_GROUPS_CLAIM,
        "claim that lists the user's groups; they become hub groups at each login",
        (f"{_AUTH}.oidc_groups_claim",),
    ),
    Option(
        "oidc_allowed_groups",
        list,
        [],
        "provider groups whose members may log in (empty: allowed_users / allow_all decide)",
        (f"{_AUTH}.oidc_allowed_groups",),
    ),
    Option(
        "oidc_admin_groups",
        list,
        [],
        "provider groups whose members are hub admins",
        (f"{_AUTH}.oidc_admin_groups",),
    ),
    Option(
        "oidc_provider_name",
        str,
        DEFAULT_OIDC_PROVIDER_NAME,
        'name on the login button: "Sign in with <name>"',
        (f"{_AUTH}.login_service",),
    ),
    Option(
        "public_url",
        str,
        "",
        "the hub's address as users type it; the provider sends them back to "
        "{public_url}/hub/oauth_callback",
        (f"{_HUB}.public_url", f"{_AUTH}.oidc_callback_url"),
    ),
    Option(
        "lab_name",
        str,
        "",
        "the lab's name, shown on the login page in every mode",
        (f"{_HUB}.template_vars", f"{_HUB}.template_paths"),
    ),
    Option(
        "login_message",
        str,
        "",
        "a short message under the lab's name on the login page",
        (f"{_HUB}.template_vars", f"{_HUB}.template_paths"),
    ),
    Option(
        "logo",
        str,
        "",
        "an image file shown on the login page and in the hub's header",
        (f"{_HUB}.logo_file", f"{_HUB}.template_vars"),
    ),
    # --- certificates from an ACME CA (labhub.certs) ---
    Option(
        "acme_domain",
        str,
        "",
        "the hub's DNS name; turns on certificates from an ACME CA (HTTP-01)",
        ("LabAcme.domain", f"{_HUB}.ssl_cert", f"{_HUB}.ssl_key"),
    ),
    Option("acme_email", str, "", "contact address for the ACME account", ("LabAcme.email",)),
    Option(
        "acme_directory",
        str,
        DEFAULT_ACME_DIRECTORY,
        "ACME directory URL (Let's Encrypt, step-ca, an internal CA)",
        ("LabAcme.directory",),
    ),
    Option(
        "acme_ca_bundle",
        str,
        "",
        "PEM file with the TLS roots of a private ACME server",
        ("LabAcme.ca_bundle",),
    ),
    Option(
        "acme_challenge_port",
        int,
        DEFAULT_ACME_CHALLENGE_PORT,
        "port where the HTTP-01 answer is served",
        ("LabAcme.challenge_port",),
    ),
    Option(
        "acme_renew_days",
        float,
        DEFAULT_ACME_RENEW_DAYS,
        "renew when fewer days than this remain",
        ("LabAcme.renew_days",),
    ),
    Option(
        "acme_check_interval",
        float,
        DEFAULT_ACME_CHECK_INTERVAL,
        "seconds between renewal checks",
        ("LabAcme.check_interval",),
    ),
    # usage records, each user's usage page and the personal-folder notice (labhub.usage)
    Option(
        "personal_folder_soft_limit",
        str,
        "",
        "personal-folder size over which a user sees a notice, e.g. 20G (never enforced)",
        (f"{_SPAWNER}.personal_folder_soft_limit", f"{_HUB}.extra_handlers"),
    ),
    # --- sharing a lab with a teammate (issue 25) ---
    Option(
        "sharing",
        bool,
        True,
        "let users share their running lab with a person or a group, from the lab's Share "
        "entry and the hub API",
        (f"{_HUB}.load_roles", "Spawner.oauth_client_allowed_scopes"),
    ),
    Option(
        "share_within_teams",
        bool,
        True,
        "allow a share only with people in one of the owner's groups, or one of those groups; "
        "false lets anyone share with any user or group",
        ("LabSharing.within_teams",),
    ),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
SPAWNER_SECTION = _SPAWNER


# --- reading values -----------------------------------------------------------


def parse_env(option: Option, raw: str) -> Any:
    """The value of ``option`` written as text in its environment variable."""
    if option.kind is bool:
        value = raw.strip().lower()
        if value in TRUE_WORDS:
            return True
        if value in FALSE_WORDS:
            return False
        raise OptionError(f"{option.env} must be true or false, not {raw!r}.")
    if option.kind is list:
        # DNs contain commas, so a list of DNs is separated by semicolons
        separator = ";" if option.name.startswith("ldap_") and "=" in raw else ","
        if option.name == "oidc_scopes":
            separator = None  # scopes are written space-separated, as in OAuth itself
            raw = raw.replace(",", " ")
        return [item.strip() for item in raw.split(separator) if item.strip()]
    if option.kind is str:
        # allowed values are lower case; "Dummy" in a .env file means dummy
        return raw.strip().lower() if option.choices else raw.strip()
    try:
        return option.kind(raw)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(option.kind, option.kind.__name__)
        raise OptionError(f"{option.env} must be {what}, not {raw!r}.") from None


def unknown_options_message(names: list[str]) -> str:
    """One sentence refusing ``names``, with the closest real option for each misspelling."""
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, BY_NAME, n=2)
        if close:
            hints.append(f"{name!r} (did you mean {' or '.join(map(repr, close))}?)")
        else:
            hints.append(repr(name))
    return (
        f"configure() got unknown options {', '.join(hints)}; "
        "the options are listed in labhub.hub.options.OPTIONS."
    )


def _join(words: tuple[str, ...]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


def _quoted(words: tuple[str, ...]) -> str:
    return _join(tuple(repr(word) for word in words))


def resolve(
    overrides: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], set[str]]:
    """Every option's value, and the names given explicitly (keyword, else ``LABHUB_*``).

    A keyword argument of None counts as not given. Unknown names and values outside
    an option's allowed ones raise :class:`OptionError` with one sentence.
    """
    unknown = sorted(set(overrides) - set(BY_NAME))
    if unknown:
        raise OptionError(unknown_options_message(unknown))
    values: dict[str, Any] = {}
    explicit: set[str] = set()
    for option in OPTIONS:
        if overrides.get(option.name) is not None:
            values[option.name], source = overrides[option.name], option.name
        elif option.env in environ:
            values[option.name], source = parse_env(option, environ[option.env]), option.env
        else:
            values[option.name] = option.default
            continue
        explicit.add(option.name)
        value = values[option.name]
        # an empty value keeps the option's "decide for me" meaning (auth_mode)
        if option.choices and value not in option.choices and value != option.default:
            raise OptionError(f"{source} must be {_join(option.choices)}, not {value!r}.")
    return values, explicit


# --- the authentication mode ----------------------------------------------------


def auth_mode(configured: str | None, environ: Mapping[str, str]) -> str:
    """``ldap``, ``dummy`` or ``oidc``: the one rule the hub, configure(), ``labhub check`` and ``run`` share.

    A configured mode (``LabAuthenticator.mode`` or configure's ``auth_mode``) wins;
    otherwise ``LABHUB_AUTH_MODE``; otherwise ``DEV_MODE`` set to a yes-word
    (1, true, yes, on) means dummy; otherwise ldap. An unknown mode raises
    :class:`OptionError` naming where it came from.
    """
    if configured:
        if configured not in AUTH_MODES:
            raise OptionError(
                f"LabAuthenticator.mode must be {_quoted(AUTH_MODES)}, not {configured!r}."
            )
        return configured
    from_env = environ.get("LABHUB_AUTH_MODE", "").strip().lower()
    if from_env:
        if from_env not in AUTH_MODES:
            raise OptionError(f"LABHUB_AUTH_MODE must be {_quoted(AUTH_MODES)}, not {from_env!r}.")
        return from_env
    if environ.get("DEV_MODE", "").strip().lower() in TRUE_WORDS:
        return DUMMY
    return LDAP


# --- the spawner --------------------------------------------------------------


def spawner_kind(spawner_class: Any) -> str | None:
    """``docker`` or ``swarm`` for a configured ``JupyterHub.spawner_class``; None for another spawner."""
    name = (
        spawner_class if isinstance(spawner_class, str) else getattr(spawner_class, "__name__", "")
    )
    if name in SPAWNER_ALIASES:
        return SPAWNER_ALIASES[name]
    short = name.rsplit(".", 1)[-1]
    for kind, path in SPAWNER_CLASSES.items():
        if short == path.rsplit(".", 1)[-1]:
            return kind
    return None
