"""What a warm-pool container is, and whether a user's lab can come from one (pure).

A warm container is a lab started before anyone asked for it: the image, the
resources, the network and the shared folders of a lab, but no user. Its
command is :data:`WAITER`: a Python process that has already imported the
single-user server and blocks on a FIFO. When a user logs in, the hub

1. claims a free container by renaming it to the user's lab name (the engine
   renames a name once, so no container is handed out twice),
2. bind-mounts the user's own folders onto the container's slot folders on the
   host, which reach the container by mount propagation (``rslave``), and
3. runs :data:`GO` in it with ``docker exec``: the user's environment (identity,
   token) goes through the FIFO to the waiter, which checks that every slot
   shows the folder the hub meant (device and inode) with the flags it meant
   (read-only where the lab's mount is), then starts the server in the process
   that already holds the imports.

Both Python processes run isolated (``python3 -I``): no ``PYTHON*`` variable, no
user site and no current folder is read as code, so nothing in a user's package
folder, HOME or notebooks runs before the user's server does, and nothing a user
plants there can make a hand-over fail in a way the hub would blame on itself.

Docker cannot add a mount to a running container, and the single-user server
takes its identity from its environment when it starts: propagation solves the
first, the waiter the second. Nothing here talks to a daemon or a disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, replace
from typing import Any

from labhub.lab.build import build_lab, fixed_overrides
from labhub.lab.model import LABEL_LAB, Lab, Overrides, container_spec
from labhub.lab.names import SLOT_LENGTH
from labhub.lab.settings import LabSettings

#: Label on every pool container: the template key it was made from.
LABEL_POOL = "org.labhub.pool"
#: Label naming the container's slot folder under the pool folder.
LABEL_SLOT = "org.labhub.pool.slot"

#: Exit code of a waiter or hand-over whose slot does not show the folder the hub meant.
WRONG_MOUNT_EXIT = 86

#: Variables fixed when a container starts, read by the interpreter before the waiter gets
#: the user's, or by the engine's runtime (the GPUs a container sees): they must not differ.
STARTUP_ENV = frozenset(
    {
        "NVIDIA_VISIBLE_DEVICES",
        "HOME",
        "PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONUSERBASE",
        "PYTHONNOUSERSITE",
        "PYTHONSAFEPATH",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "JUPYTERHUB_SINGLEUSER_APP",
        "JUPYTERHUB_SINGLEUSER_EXTENSION",
    }
)

#: The lab's server command a pool container can stand in for.
SERVER_COMMAND = "jupyterhub-singleuser"

#: Stand-in users whose labs tell per-user folders from shared ones.
STAND_INS = ("labhub-pool-stand-in-a", "labhub-pool-stand-in-b")

# The waiter. It runs as the lab uid in the pool container, isolated (-I), with the image's
# and the admin's PYTHONPATH put back by hand; its folder is in the container's own
# throwaway HOME. It imports what the single-user server imports, says "ready" once, then
# reads one order from the FIFO (the only way in is the hub's docker exec), removes the FIFO
# so no second order can come, checks the mounts and becomes the server: the user's
# environment, then the user's site (a normal start's "python3" reads it at start).
WAITER = r"""
import json, os, sys
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
home = os.environ.get("HOME") or "/tmp"
run = os.path.join(home, ".labhub-pool")
os.mkdir(run, 0o700)
fifo = os.path.join(run, "go")
os.mkfifo(fifo, 0o600)
import jupyterhub.singleuser
# What the server imports while it starts; measured with the lab image: each one not loaded
# here costs the user time after login (all of these together, about 0.1 s).
for name in ("jupyter_server.serverapp", "jupyterlab", "jupyterlab.labapp", "notebook_shim",
             "notebook_shim.nbserver", "jupyter_lsp", "jupyter_lsp.virtual_documents_shadow",
             "jupyter_server_terminals", "ipykernel.kernelspec", "IPython", "httpcore",
             "jupyter_server.kernelspecs.handlers", "jupyter_server.nbconvert.handlers",
             "jupyter_server.view.handlers", "jupyter_core.migrate", "jinja2.ext"):
    try:
        __import__(name)
    except Exception:
        pass
print("labhub-pool: ready", flush=True)
with open(fifo, encoding="utf-8") as f:
    order = json.load(f)
os.unlink(fifo)
for target, (dev, ino, read_only) in order["mounts"].items():
    st = os.stat(target)
    if (st.st_dev, st.st_ino) != (dev, ino):
        print(f"labhub-pool: {target} does not show the user's folder", file=sys.stderr, flush=True)
        sys.exit(86)
    if read_only and not os.statvfs(target).f_flag & os.ST_RDONLY:
        print(f"labhub-pool: {target} is not read-only", file=sys.stderr, flush=True)
        sys.exit(86)
os.environ.clear()
os.environ.update(order["env"])
if order.get("cwd"):
    os.chdir(order["cwd"])
sys.argv = ["jupyterhub-singleuser", *order["argv"]]
import site
if not os.environ.get("PYTHONNOUSERSITE"):
    # the user's site, from the user's PYTHONUSERBASE, before the image's as at a normal start
    site.ENABLE_USER_SITE = True
    site.USER_BASE = site.USER_SITE = None
    user_site = site.getusersitepackages()
    if os.path.isdir(user_site):
        known = list(sys.path)
        site.addsitedir(user_site)
        added = [p for p in sys.path if p not in known]
        at = next((i for i, p in enumerate(known) if p.endswith(("site-packages", "dist-packages"))), len(known))
        sys.path[:] = known[:at] + added + known[at:]
    site.execusercustomize()
print("labhub-pool: starting the server", flush=True)
from jupyterhub.singleuser import main
sys.exit(main())
"""

# Run by the hub with docker exec, isolated (-I), with the user's environment: checks the
# slots as the waiter will, then hands the order to the waiter.
GO = r"""
import json, os, signal, sys, time
fifo = os.path.join(os.environ.get("HOME") or "/tmp", ".labhub-pool", "go")
order = json.loads(sys.argv[1])
order["env"] = dict(os.environ)
for target, (dev, ino, read_only) in order["mounts"].items():
    st = os.stat(target)
    if (st.st_dev, st.st_ino) != (dev, ino):
        print(f"{target} does not show the folder the hub mounted there", flush=True)
        sys.exit(86)
    if read_only and not os.statvfs(target).f_flag & os.ST_RDONLY:
        print(f"{target} is not read-only", flush=True)
        sys.exit(86)
signal.alarm(int(order.pop("timeout")))
while not os.path.exists(fifo):
    time.sleep(0.02)
with open(fifo, "w", encoding="utf-8") as f:
    json.dump(order, f)
"""


class PoolMismatch(ValueError):
    """This user's lab differs from the pool's template; the message says how."""


@dataclass(frozen=True)
class SlotBind:
    """One of the user's own folders, bind-mounted onto slot ``index`` of a pool container."""

    index: int
    source: str
    target: str
    read_only: bool


def slot_name() -> str:
    """A fresh, unguessable slot and container suffix."""
    return secrets.token_hex(SLOT_LENGTH // 2)


def slot_path(pool_dir: str, slot: str, index: int) -> str:
    """Where slot ``index`` of container ``slot`` lives on the host."""
    return os.path.join(pool_dir, slot, str(index))


def _key_of(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def per_user_binds(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[str]:
    """Container paths of the bind mounts whose host folder differs between two users.

    ``first`` and ``second`` are the mounts of the same lab for two stand-in users.
    Any other difference (a volume named per user, a Windows share) cannot be put
    in place after the start, so it is an error.
    """
    by_target = {m["Target"]: m for m in second}
    if sorted(by_target) != sorted(m["Target"] for m in first):
        raise PoolMismatch("the labs of two users have different mount paths")
    targets = []
    for mount in first:
        other = by_target[mount["Target"]]
        if mount == other:
            continue
        if mount.get("Type") == other.get("Type") == "bind" and {
            k: v for k, v in mount.items() if k != "Source"
        } == {k: v for k, v in other.items() if k != "Source"}:
            targets.append(mount["Target"])
        else:
            raise PoolMismatch(f"the mount at {mount['Target']} is not a plain per-user folder")
    return targets


def pool_template(settings: LabSettings) -> tuple[Lab, list[str], Overrides]:
    """The pool's lab, the container paths of its per-user folders, and its overrides.

    Two stand-in users' labs are built from the same ``settings`` by the function
    that builds every user's lab; the bind mounts in which they differ are the
    folders a hand-over puts in place. Raises :class:`PoolMismatch` for settings
    no pool can serve.
    """
    if not settings.remove:
        raise PoolMismatch("remove is False, and a pool container must be thrown away")
    if settings.cifs_shares:
        raise PoolMismatch("Windows shares are mounted with each user's password")
    if settings.uid_strategy != "direct":
        raise PoolMismatch("only uid_strategy 'direct' starts the server as the lab uid")
    hooks = settings.per_user_hooks()
    if hooks:
        raise PoolMismatch(f"{', '.join(hooks)} is computed per user")
    first, second = (build_lab(settings, name, command=[SERVER_COMMAND]) for name in STAND_INS)
    targets = per_user_binds(first.mounts, second.mounts)
    # no user's label on a container that serves whoever logs in next
    template = replace(first, labels={LABEL_LAB: "true"})
    return template, targets, fixed_overrides(settings)


def template_lab(lab: Lab, slot_targets: list[str], pool_dir: str, slot: str) -> Lab:
    """The pool container's lab: ``lab`` (a stand-in user's) with the user taken out.

    Per-user folders become this slot's folders, with ``rslave`` propagation so a
    bind mount made later on the host shows inside; the environment keeps only
    what the interpreter reads at start; the command is the waiter.
    """
    mounts = []
    for mount in lab.mounts:
        if mount["Target"] in slot_targets:
            index = slot_targets.index(mount["Target"])
            mount = {
                **mount,
                "Source": slot_path(pool_dir, slot, index),
                "BindOptions": {"Propagation": "rslave"},
            }
        mounts.append(mount)
    environment = {k: v for k, v in lab.environment.items() if k in STARTUP_ENV}
    return replace(
        lab,
        name="",
        command=["python3", "-I", "-c", WAITER],
        environment=environment,
        mounts=mounts,
        labels={**lab.labels, LABEL_SLOT: slot},
    )


def pool_spec(template: Lab, overrides: Overrides) -> tuple[dict[str, Any], str]:
    """The pool's ``create_container`` arguments and the key that says which labs it can serve.

    The key hashes the translated spec with the slot taken out, so two pool
    containers of one configuration share it and a changed setting changes it.
    """
    spec = container_spec(replace(template, name="labhub-pool-key"), overrides)
    keyed = json.loads(json.dumps(spec, default=str))
    keyed["labels"].pop(LABEL_SLOT, None)
    for mount in keyed["host_config"]["mounts"]:
        if mount.get("BindOptions", {}).get("Propagation") == "rslave":
            mount["Source"] = "slot"
    return spec, _key_of(keyed)


def fit(lab: Lab, overrides: Overrides, template: Lab, template_key: str) -> list[SlotBind]:
    """The binds that turn a pool container into ``lab``, or :class:`PoolMismatch` saying why not.

    ``lab`` with its user taken out must translate to exactly the container the pool
    holds: the same image, resources, network, shared mounts and overrides.
    """
    if not lab.command or os.path.basename(lab.command[0]) != SERVER_COMMAND:
        raise PoolMismatch(f"the lab's command is not {SERVER_COMMAND}")
    if lab.gpu_ids:
        raise PoolMismatch("the lab holds GPUs")
    for key in STARTUP_ENV:
        if lab.environment.get(key) != template.environment.get(key):
            raise PoolMismatch(f"the lab's {key} differs from the pool's")
    slot_mounts = {
        m["Target"]: m
        for m in template.mounts
        if m.get("BindOptions", {}).get("Propagation") == "rslave"
    }
    # a mount only this user has (a team folder) cannot be added to a started container
    extra = sorted({m["Target"] for m in lab.mounts} - {m["Target"] for m in template.mounts})
    if extra:
        raise PoolMismatch(f"the lab mounts {', '.join(extra)}, which pool containers lack")
    targets = sorted(slot_mounts, key=lambda t: int(os.path.basename(slot_mounts[t]["Source"])))
    binds = []
    mounts = []
    for mount in lab.mounts:
        slot_mount = slot_mounts.get(mount["Target"])
        if slot_mount is not None and mount.get("Type") == "bind":
            binds.append(
                SlotBind(
                    index=targets.index(mount["Target"]),
                    source=mount["Source"],
                    target=mount["Target"],
                    read_only=bool(mount.get("ReadOnly")),
                )
            )
            mount = slot_mount
        mounts.append(mount)
    if len(binds) != len(slot_mounts):
        raise PoolMismatch("the lab lacks one of the pool's per-user folders")
    neutral = replace(
        lab,
        command=template.command,
        environment=template.environment,
        labels=template.labels,
        mounts=mounts,
        port=template.port,
    )
    _, key = pool_spec(neutral, overrides)
    if key != template_key:
        raise PoolMismatch("the lab's container settings differ from the pool's")
    return binds


def go_command(lab: Lab, mounts: dict[str, tuple[int, int, bool]], timeout: float) -> list[str]:
    """The ``docker exec`` command that hands ``lab``'s server its arguments.

    The environment (token included) goes as the exec's own environment, never on
    a command line; ``mounts`` maps each slot's container path to the device and
    inode the hub bound there, and whether it must be read-only. The command runs
    isolated: the user's package folder is already mounted, and nothing in it runs.
    """
    order = {
        "argv": list(lab.command[1:]),
        "cwd": lab.workdir,
        "mounts": {target: list(ids) for target, ids in mounts.items()},
        "timeout": max(1, int(timeout)),
    }
    return ["python3", "-I", "-c", GO, json.dumps(order)]
