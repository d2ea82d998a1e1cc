"""Pure functions for the parts of a lab container that are not mounts: who it runs as, hardening."""

from __future__ import annotations

from typing import Any

from .options import UID_STRATEGIES


def run_as(strategy: str, uid: int, gid: int, nb_user: str, home: str) -> dict[str, Any]:
    """The container user and environment so files land on the host as ``uid:gid``.

    ``direct`` runs the whole container as ``uid:gid`` with ``HOME`` set; any image whose
    HOME is writable works. ``docker-stacks`` starts as root and lets the image's
    ``start.sh`` switch to ``NB_UID``/``NB_GID`` after fixing HOME's owner.
    """
    if strategy == "direct":
        return {
            "user": f"{uid}:{gid}",
            "environment": {"HOME": home, "USER": nb_user, "LOGNAME": nb_user},
        }
    if strategy == "docker-stacks":
        return {
            "user": "0",
            "environment": {
                "NB_USER": nb_user,
                "NB_UID": str(uid),
                "NB_GID": str(gid),
                "CHOWN_HOME": "yes",
                "HOME": home,
            },
        }
    raise ValueError(f"uid_strategy must be one of {UID_STRATEGIES}, not {strategy!r}.")


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``; nested dicts merge, everything else is replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def container_host_config(
    *,
    network_name: str,
    mounts: list[dict[str, Any]],
    publish_port: tuple[int, str] | None = None,
    links: dict[str, str] | None = None,
    mem_limit: int | str | None = None,
    cpu_limit: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for docker-py's ``create_host_config`` of a lab container.

    ``publish_port`` is ``(container port, host ip)`` on the default bridge, where the hub
    reaches the server through a published port; None on host networking (the server
    listens on the host's loopback itself) and on a named network (the hub uses the
    container's address). ``extra`` is the admin's ``extra_host_config``, merged last;
    hardening is applied after it, so no setting can make a lab container privileged.
    """
    extra = extra or {}
    host_config: dict[str, Any] = {
        "auto_remove": False,
        "links": links or {},
        "mounts": mounts,
        "network_mode": network_name,
    }
    if mem_limit is not None:
        host_config["mem_limit"] = mem_limit
    if cpu_limit is not None:
        period = extra.get("cpu_period", 100_000)
        host_config["cpu_period"] = period
        host_config["cpu_quota"] = int(cpu_limit * period)
    if publish_port is not None:
        port, host_ip = publish_port
        host_config["port_bindings"] = {port: (host_ip,)}
    return harden_host_config(deep_merge(host_config, extra))


#: Docker security options every lab container gets, whatever extra_host_config says.
SECURITY_OPTS = ("no-new-privileges:true",)
#: Capabilities that would let a user escape to the host (mount, load modules); never granted.
FORBIDDEN_CAPS = frozenset(
    {"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "NET_ADMIN"}
)


def harden_host_config(host_config: dict[str, Any]) -> dict[str, Any]:
    """Return ``host_config`` with privileged mode off, no-new-privileges on, no escape capabilities.

    Applied after every admin override: a lab container is never privileged and
    no process in it can gain privileges through setuid binaries.
    """
    hardened = dict(host_config)
    hardened["privileged"] = False
    opts = [o for o in hardened.get("security_opt") or [] if not o.startswith("no-new-privileges")]
    hardened["security_opt"] = [*opts, *SECURITY_OPTS]
    caps = [
        c
        for c in hardened.get("cap_add") or []
        if c.upper().removeprefix("CAP_") not in FORBIDDEN_CAPS
    ]
    if caps:
        hardened["cap_add"] = caps
    else:
        hardened.pop("cap_add", None)
    return hardened
