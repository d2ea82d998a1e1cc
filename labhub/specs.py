"""Pure functions for the parts of a lab container that are not mounts: who it runs as, hardening."""

from __future__ import annotations

from typing import Any

UID_STRATEGIES = ("direct", "docker-stacks")


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
