"""Pure functions for the parts of a lab container that are not mounts: who it runs as, hardening."""

from __future__ import annotations

from typing import Any

from labhub.hub.options import UID_STRATEGIES


def run_as(strategy: str, uid: int, gid: int, nb_user: str, home: str) -> dict[str, Any]:
    """The container user and environment so files land on the host as ``uid:gid``.

    ``direct`` runs the whole container as ``uid:gid`` with ``HOME`` set on a throwaway
    tmpfs that uid owns, so any image with ``jupyterhub-singleuser`` works, whoever owns
    its own HOME; the notebook folders are mounted inside it. ``docker-stacks`` starts as
    root and lets the image's ``start.sh`` switch to ``NB_UID``/``NB_GID`` after fixing
    HOME's owner; every Python root runs before that switch is kept off the folders the
    user writes (:data:`ROOT_PHASE_ENVIRONMENT`).
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
                **ROOT_PHASE_ENVIRONMENT,
            },
        }
    raise ValueError(f"uid_strategy must be one of {UID_STRATEGIES}, not {strategy!r}.")


#: What a container that starts as root runs with until its start script switches to the lab uid.
#: docker-stacks runs Pythons as root there (start-notebook.py, start-singleuser.py, the
#: ``conda shell.bash hook`` of a before-notebook.d hook) with the container's environment:
#: with ``PYTHONUSERBASE`` pointing at the user's package folder, a ``.pth`` file the user
#: wrote there ran as root. No user site and no current folder on ``sys.path`` keep every
#: one of them, hooks an admin adds included, off the package folder, HOME and the notebooks.
#: ``JUPYTER_ENV_VARS_TO_UNSET`` is docker-stacks' own switch: start.sh unsets the variables
#: it names after the root hooks and before it becomes the lab uid, whose server and kernels
#: then find the user's packages again.
ROOT_PHASE_ENVIRONMENT = {
    "PYTHONNOUSERSITE": "1",
    "PYTHONSAFEPATH": "1",
    "JUPYTER_ENV_VARS_TO_UNSET": "PYTHONNOUSERSITE,PYTHONSAFEPATH",
}


def unset_after_switch(*lists: str | None) -> str:
    """``JUPYTER_ENV_VARS_TO_UNSET`` naming every variable of the comma-separated ``lists``, once each."""
    names: list[str] = []
    for given in lists:
        for name in (given or "").split(","):
            if name.strip() and name.strip() not in names:
                names.append(name.strip())
    return ",".join(names)


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
#: Capabilities that would let a user escape to the host (mount, load modules, read any file,
#: make device nodes, forge packets on the labs' network, give files capabilities); never granted.
FORBIDDEN_CAPS = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_PTRACE",
        "NET_ADMIN",
        "DAC_READ_SEARCH",
        "MKNOD",
        "NET_RAW",
        "SETFCAP",
        "SETPCAP",
    }
)
#: What a lab that starts as root keeps of Docker's default capabilities, every other one
#: dropped: its start script gives HOME to the lab uid (CHOWN), switches to the lab uid with
#: sudo or setpriv (SETUID, SETGID, AUDIT_WRITE for sudo's audit record), and tini, still
#: root, forwards a stop signal to the lab uid's server (KILL). Without DAC_OVERRIDE and
#: FOWNER root cannot write the lab uid's 0700 folders before the switch. The switch empties
#: the server's own set; no-new-privileges keeps it empty.
ROOT_START_CAPS = ("CHOWN", "SETUID", "SETGID", "KILL", "AUDIT_WRITE")
#: Host namespaces a lab must never join: they would show it other users' processes or the host's ids.
_HOST_MODES = ("pid_mode", "ipc_mode", "userns_mode", "uts_mode", "cgroupns")


def allowed_capabilities(caps: list[str] | None) -> list[str]:
    """``caps`` without the ones that let a lab escape; the same rule for Docker and Swarm."""
    return [c for c in caps or [] if c.upper().removeprefix("CAP_") not in FORBIDDEN_CAPS]


def starts_as_root(user: str | None) -> bool:
    """True when a container started as ``user`` runs its first process as root (the image's USER if empty)."""
    name = str(user or "").split(":", 1)[0].strip()
    return name in ("", "0", "root")


def capabilities(user: str | None, extra: list[str] | None = None) -> dict[str, list[str]]:
    """``cap_drop``/``cap_add`` of a lab started as ``user``: all dropped, then what its start needs.

    A lab that starts as its own uid (``direct``) needs none; one that starts as root keeps
    :data:`ROOT_START_CAPS`. ``extra`` (an admin's ``cap_add``) is added once held to
    :data:`FORBIDDEN_CAPS`.
    """
    keep = list(ROOT_START_CAPS) if starts_as_root(user) else []
    for cap in allowed_capabilities(extra):
        name = cap.upper().removeprefix("CAP_")
        if name not in keep:
            keep.append(name)
    rule: dict[str, list[str]] = {"cap_drop": ["ALL"]}
    if keep:
        rule["cap_add"] = keep
    return rule


def _with_capabilities(spec: dict[str, Any], user: str | None) -> dict[str, Any]:
    """``spec`` with every capability dropped but those :func:`capabilities` gives ``user``."""
    rule = capabilities(user, spec.pop("cap_add", None))
    spec.pop("cap_drop", None)
    spec.update(rule)
    return spec


def harden_host_config(host_config: dict[str, Any], user: str | None = "") -> dict[str, Any]:
    """Return ``host_config`` with privileged mode off, no-new-privileges on, no capability it needs not.

    Applied after every admin override: a lab container is never privileged, keeps
    only the capabilities its start as ``user`` needs (:func:`capabilities`), and no
    process in it can gain privileges through setuid binaries.
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
    return _with_capabilities(hardened, user)


def harden_service_container(container_spec: dict[str, Any]) -> dict[str, Any]:
    """``ContainerSpec`` keyword arguments with the same capability rule as a Docker lab.

    Swarm's API (1.41) has no privileged mode, no host namespaces and no devices in a
    service, so capabilities are what an override could widen; ``CapabilityDrop`` and
    ``CapabilityAdd`` (API 1.41) carry the same rule as a container's, by the spec's ``user``.
    """
    spec = dict(container_spec)
    return _with_capabilities(spec, spec.get("user"))
