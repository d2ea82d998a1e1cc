"""Checks that run when the hub starts: a bad setting stops it with one sentence, no traceback."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from traitlets import Bool, TraitError
from traitlets.config import Configurable

from labhub.hub import identity
from labhub.hub.options import (
    DEFAULT_ACME_CHALLENGE_PORT,
    HOST_HTTP_PORT,
    HOST_HTTPS_PORT,
    HOST_HUB_PORT,
    HOST_PROXY_API_PORT,
)

#: Where Linux says which ports need CAP_NET_BIND_SERVICE, for the reader's network namespace.
UNPRIVILEGED_PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
#: The capability's bit in /proc/<pid>/status masks (linux/capability.h).
CAP_NET_BIND_SERVICE = 10


def refuse_to_start(log: logging.Logger | logging.LoggerAdapter, message: str) -> None:
    """Log ``message`` as the one reason the hub stops, and stop it.

    JupyterHub logs any exception raised during start-up with a full traceback;
    SystemExit passes through that handler, so the admin sees only the sentence.
    """
    log.critical("labhub: %s", message)
    raise SystemExit(1)


class HostNetworkGuard(Configurable):
    """The one opt-out of the check that labs on host networking cannot take the hub's ports."""

    allow_unprivileged_ports = Bool(
        False,
        config=True,
        help="Start even though labs on host networking could bind the hub's or the proxy's "
        "ports while they restart (ports at or above ip_unprivileged_port_start) and so receive "
        "logins, passwords and token checks; only for a machine where every lab user is trusted.",
    )


def url_port(url: str) -> int | None:
    """The TCP port of ``url`` (its scheme's default when none is written); None for a Unix socket."""
    parsed = urlparse(url or "")
    if not parsed.hostname:
        return None
    if parsed.port:
        return parsed.port
    return {"http": 80, "https": 443}.get(parsed.scheme)


def squattable_ports(ports: dict[str, int | None], unprivileged_start: int) -> list[str]:
    """The settings in ``ports`` whose port any unprivileged process could bind, as ``name (port)``."""
    return [
        f"{name} ({port})"
        for name, port in ports.items()
        if port is not None and port >= unprivileged_start
    ]


def impostor_message(squattable: list[str], unprivileged_start: int) -> str:
    """One sentence refusing a hub whose labs share its network namespace and could take its ports."""
    return (
        f"Labs on host networking share the hub's network namespace, so while the hub or the "
        f"proxy restarts any lab could bind {', '.join(squattable)} and receive passwords and "
        f"token checks; use ports below {unprivileged_start} (configure() sets hub_port "
        f"{HOST_HUB_PORT}, the proxy's api_url port {HOST_PROXY_API_PORT} and port "
        f"{HOST_HTTPS_PORT} or {HOST_HTTP_PORT}), a lab network of their own, or set "
        "c.HostNetworkGuard.allow_unprivileged_ports = True to accept that risk."
    )


def has_capability(status: str, mask: str, bit: int) -> bool:
    """True when the ``mask`` line (``CapEff``, ``CapAmb``) of a /proc status text has ``bit``."""
    for line in status.splitlines():
        if line.startswith(mask + ":"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def bind_refusal(privileged: list[str], status: str) -> str | None:
    """One sentence when this hub cannot bind its ``privileged`` ports; None when it can.

    ``status`` is the hub's /proc status text: binding takes CAP_NET_BIND_SERVICE among
    its effective capabilities (root has it unless it was dropped); another account
    needs it as an ambient capability, so that the proxy the hub starts keeps it too.
    """
    if not privileged or has_capability(status, "CapEff", CAP_NET_BIND_SERVICE):
        return None
    return (
        f"The hub's account cannot bind {', '.join(privileged)}; run the hub with the ambient "
        "capability CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE) "
        "or as root."
    )


def hub_ports(app: Any, proxy: Any) -> dict[str, int | None]:
    """The ports the hub and its proxy listen on, by the setting that chooses each."""
    hub = getattr(app, "hub", None)
    hub_port = url_port(getattr(hub, "bind_url", "")) if hub is not None else None
    ports = {
        "hub_port": hub_port or getattr(app, "hub_port", None),
        "ConfigurableHTTPProxy.api_url": url_port(getattr(proxy, "api_url", "")),
        "port": url_port(getattr(app, "bind_url", "")) or getattr(app, "port", None),
    }
    acme = getattr(app, "config", {}).get("LabAcme", {})
    if acme.get("domain"):
        # a lab holding the challenge port while the hub restarts could get the hub's certificate
        ports["acme_challenge_port"] = acme.get("challenge_port", DEFAULT_ACME_CHALLENGE_PORT)
    return ports


def read_unprivileged_port_start(path: str = UNPRIVILEGED_PORT_START) -> int:
    """The lowest port an unprivileged process may bind here; 1024 where the kernel does not say."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1024


def _lab_overrides(spawner: Any) -> list[dict[str, Any]]:
    """The spawner's own settings that place or empower a lab, then each profile's override of them."""
    keys = ("network_name", "extra_host_config", "extra_container_spec")
    own = {key: getattr(spawner, key, None) for key in keys}
    return [own, *(p.get("spawner_override") or {} for p in _profiles(spawner))]


def labs_share_hub_network(spawner: Any) -> bool:
    """True when some lab of this spawner runs in the host's network namespace, the hub's own.

    Host networking by ``network_name``, by a profile's ``spawner_override`` or by
    ``extra_host_config``; a callable ``profile_list`` is only known at spawn time.
    """
    for settings in _lab_overrides(spawner):
        host_config = settings.get("extra_host_config")
        if settings.get("network_name") == "host" or (
            isinstance(host_config, dict) and host_config.get("network_mode") == "host"
        ):
            return True
    return False


def labs_get_bind_capability(spawner: Any) -> bool:
    """True when an admin's ``cap_add`` gives labs CAP_NET_BIND_SERVICE, the one that binds any port."""
    for settings in _lab_overrides(spawner):
        for key in ("extra_host_config", "extra_container_spec"):
            spec = settings.get(key)
            caps = spec.get("cap_add") if isinstance(spec, dict) else None
            names = {str(c).upper().removeprefix("CAP_") for c in caps or []}
            if "NET_BIND_SERVICE" in names:
                return True
    return False


def _profiles(spawner: Any) -> list[dict[str, Any]]:
    profiles = getattr(spawner, "profile_list", None)
    if not isinstance(profiles, (list, tuple)):
        return []
    return [p for p in profiles if isinstance(p, dict)]


def check_hub_ports(app: Any, spawner: Any, proxy: Any) -> None:
    """Stop the hub when labs share its network namespace and could take its or the proxy's ports.

    A lab runs without CAP_NET_BIND_SERVICE, so a port below the kernel's
    ``ip_unprivileged_port_start`` is one no lab can bind, whoever has crashed.
    """
    ports = hub_ports(app, proxy)
    start = read_unprivileged_port_start()
    if labs_share_hub_network(spawner):
        squattable = squattable_ports(ports, start)
        allowed = HostNetworkGuard(config=app.config).allow_unprivileged_ports
        if squattable and not allowed:
            refuse_to_start(app.log, impostor_message(squattable, start))
        if labs_get_bind_capability(spawner) and not allowed:
            refuse_to_start(
                app.log,
                "cap_add gives labs NET_BIND_SERVICE, with which a lab on host networking can "
                "bind the hub's ports while it restarts; remove it, or set "
                "c.HostNetworkGuard.allow_unprivileged_ports = True to accept that risk.",
            )
    privileged = [f"{name} ({port})" for name, port in ports.items() if port and port < start]
    with open("/proc/self/status") as f:
        status = f.read()
    refusal = bind_refusal(privileged, status)
    if refusal:
        refuse_to_start(app.log, refusal)


def run_hub_startup(app: Any, proxy: Any = None) -> Any:
    """The lab's duties at hub start, done once per hub whichever plugin asks first.

    Checks the lab settings and the hub's ports, creates the labs' network the hub
    binds to, fills the warm pool, and puts the team rule in front of the hub's shares
    API. Returns the checked lab spawner (None for other spawners), so the
    authenticator can check what it depends on, such as the groups named by
    ``profile_list``.
    """
    done = getattr(app, "_labhub_startup", _NOT_RUN)
    if done is not _NOT_RUN:
        return done
    # before anything is named: the pool and the check name objects with the hub's identity
    identity.remember(getattr(app, "cookie_secret", None))
    if hasattr(app, "authenticator") and hasattr(app, "config"):
        from labhub.hub.sharing import install_share_guard

        # before the hub builds its handlers, for every spawner and authenticator
        install_share_guard(app)
    # the proxy is built before the authenticator, so whichever asks first, it exists
    spawner = _run_hub_startup(app, proxy or getattr(app, "proxy", None))
    app._labhub_startup = spawner
    return spawner


_NOT_RUN = object()


def _run_hub_startup(app: Any, proxy: Any) -> Any:
    """Read the configured lab spawner's settings now, with no user, so a wrong one stops the hub.

    Otherwise a wrong ``lab_uid`` or ``cifs_shares`` would surface only at the first spawn.
    The spawner is built from the config alone (no user, no name): its traits are
    validated as they are read, then the settings value and every profile are checked.
    """
    from labhub.spawner.settings import LabTraits

    spawner_class = getattr(app, "spawner_class", None)
    if not isinstance(spawner_class, type) or not issubclass(spawner_class, LabTraits):
        return None
    try:
        spawner = spawner_class(config=app.config)
        spawner.check_lab_config()
    except (ValueError, TypeError, TraitError) as err:
        refuse_to_start(app.log, f"{spawner_class.__name__}: {err}")
    # before any lab or pool container exists: a refused hub leaves nothing behind
    check_hub_ports(app, spawner, proxy)
    from labhub.engines.network import LabNetworkError

    try:
        # the hub binds to the labs' network gateway: the network must exist before it listens
        spawner.prepare_lab_network_at_start()
    except LabNetworkError as err:
        refuse_to_start(app.log, str(err))
    except Exception as err:  # docker-py raises several kinds when no engine answers
        refuse_to_start(
            app.log, f"The labs' Docker network cannot be checked ({err}); is Docker running?"
        )
    start_warm_pool = getattr(spawner, "start_warm_pool", None)
    if start_warm_pool is not None:
        from labhub.pool.mounts import PoolMountError

        try:
            # filled before the first login, not at it
            start_warm_pool()
        except PoolMountError as err:
            refuse_to_start(app.log, str(err))
    if getattr(spawner, "record_usage", False):
        # labs still running from before a restart are sampled again, folders measured
        spawner.lab_usage.recorder.ensure_running()
    return spawner
