"""Pure functions for the parts of a lab container that are not mounts: who it runs as, hardening."""

from __future__ import annotations

from typing import Any

from labhub.hub.options import UID_STRATEGIES


def run_as(strategy: str, uid: int, gid: int, nb_user: str, home: str) -> dict[str, Any]:
    """The container user and environment so files land on the host as ``uid:gid``.

    ``direct`` runs the whole container as ``uid:gid`` with ``HOME`` set on a throwaway
    tmpfs that uid owns, so any image with ``jupyterhub-singleuser`` works, whoever owns
    its own HOME; the notebook folders are mounted inside it. ``docker-stacks`` starts as root and lets the image's
    ``start.sh`` switch to ``NB_UID``/``NB_GID`` after fixing HOME's owner.
    """
    if strategy == "direct":
        return {
            "user": f"{uid}:{gid}",
            "environment": {"HOME": home, "USER": nb_user, "LOGNAME": nb_user},
            # the image's HOME may belong to another uid (docker-stacks: 1000, mode 0755)
            "tmpfs": {home: throwaway_home_options(uid, gid)},
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


def throwaway_home_options(uid: int, gid: int) -> str:
    """tmpfs options for a HOME the lab uid can write, gone with the container like the rest."""
    return f"uid={uid},gid={gid},mode=1777"


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``; nested dicts merge, everything else is replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


#: Docker security options every lab container gets, whatever extra_host_config says.
SECURITY_OPTS = ("no-new-privileges:true",)
#: Capabilities that would let a user escape to the host (mount, load modules, read any file); never granted.
FORBIDDEN_CAPS = frozenset(
    {"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "NET_ADMIN", "DAC_READ_SEARCH"}
)
#: Host namespaces a lab must never join: they would show it other users' processes or the host's ids.
_HOST_MODES = ("pid_mode", "ipc_mode", "userns_mode", "uts_mode", "cgroupns")


def allowed_capabilities(caps: list[str] | None) -> list[str]:
    """``caps`` without the ones that let a lab escape; the same rule for Docker and Swarm."""
    return [c for c in caps or [] if c.upper().removeprefix("CAP_") not in FORBIDDEN_CAPS]


def _with_allowed_capabilities(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with ``cap_add`` narrowed to the allowed capabilities, or dropped if none remain."""
    caps = allowed_capabilities(spec.get("cap_add"))
    if caps:
        spec["cap_add"] = caps
    else:
        spec.pop("cap_add", None)
    return spec


def harden_host_config(host_config: dict[str, Any]) -> dict[str, Any]:
    """Return ``host_config`` with privileged mode off, no-new-privileges on, no escape capabilities.

    Applied after every admin override: a lab container is never privileged and
    no process in it can gain privileges through setuid binaries.
    """
    hardened = dict(host_config)
    hardened["privileged"] = False
    # "unconfined" would switch off seccomp or AppArmor, the filters that keep a lab off the host kernel
    opts = [
        o
        for o in hardened.get("security_opt") or []
        if not o.startswith("no-new-privileges") and "unconfined" not in o
    ]
    hardened["security_opt"] = [*opts, *SECURITY_OPTS]
    for key in _HOST_MODES:
        if str(hardened.get(key, "")).startswith("host"):
            hardened.pop(key)
    # host devices and host-path binds bypass the lab's mounts, which are the only way in
    hardened.pop("devices", None)
    hardened.pop("binds", None)
    hardened.pop("volumes_from", None)
    return _with_allowed_capabilities(hardened)


def harden_service_container(container_spec: dict[str, Any]) -> dict[str, Any]:
    """``ContainerSpec`` keyword arguments with the same capability rule as a Docker lab.

    Swarm's API (1.41) has no privileged mode, no host namespaces and no devices in a
    service, so capabilities are what an override could widen.
    """
    return _with_allowed_capabilities(dict(container_spec))
