"""Create a user's folder with a short-lived root helper (a container, or a Swarm task).

Used when the hub cannot make the folder itself: the hub does not run as root
(so it cannot ``chown`` to the lab uid), or ``lab_root`` is mounted only on the
nodes that run labs. The helper runs the lab image as root with the folders'
parent mounted, and does what :func:`labhub.folders.ensure_personal_folder`
does on the hub: owner lab uid:gid, mode 0700, demo notebooks copied only into a
new folder, built under a temporary name and renamed so it is never half-made.

Every path and id is passed as an argument to a fixed script, never pasted into
the shell text, so no user name can reach the shell as code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from docker.errors import APIError, NotFound

from .mounts import LABEL_USER, bind_mount

#: Label put on helper containers and services, so admins can find leftovers.
LABEL_HELPER = "org.labhub.folder-task"
#: Where the demo notebooks appear inside the helper (read-only).
DEMO_TARGET = "/labhub-demo"
#: How long a helper may take before the spawn fails.
TIMEOUT = 120

#: The helper's script; arguments: folder uid gid personal_root shared_root demo_dir.
FOLDER_SCRIPT = r"""set -eu
folder="$1"; uid="$2"; gid="$3"; personal_root="$4"; shared_root="$5"; demo="$6"
fix() {
  if [ -L "$1" ] || { [ -e "$1" ] && [ ! -d "$1" ]; }; then
    echo "$1 exists but is not a folder (a symlink or a file); move it away." >&2; exit 3
  fi
  mkdir -p "$1"; chown "$uid:$gid" "$1"; chmod "$2" "$1"
}
fix "$personal_root" 751
fix "$shared_root" 2775
if [ ! -e "$folder" ] && [ ! -L "$folder" ]; then
  staging="$(mktemp -d "$personal_root/.creating-XXXXXX")"
  if [ -n "$demo" ] && [ -d "$demo" ]; then
    cp -R "$demo/." "$staging/"
    find "$staging" -mindepth 1 \( -type l -o -name '.*' \) -prune -exec rm -rf {} +
    chmod -R u=rwX,go= "$staging"
  fi
  chown -R "$uid:$gid" "$staging"; chmod 0700 "$staging"
  # rename never replaces a non-empty folder: a concurrent spawn that won keeps its own
  mv -T "$staging" "$folder" 2>/dev/null || rm -rf "$staging"
fi
fix "$folder" 700
"""


def folder_task_command(
    folder: str,
    uid: int,
    gid: int,
    personal_root: str,
    shared_root: str,
    demo_dir: str = "",
) -> list[str]:
    """The helper's argv: the fixed script, then every path as its own argument."""
    for path in (folder, personal_root, shared_root):
        if not path.startswith("/"):
            raise ValueError(f"Folder {path!r} must be an absolute path.")
    return [
        "sh",
        "-c",
        FOLDER_SCRIPT,
        "labhub-folder",
        folder,
        str(uid),
        str(gid),
        personal_root,
        shared_root,
        demo_dir,
    ]


def folder_task_mounts(personal_root: str, shared_root: str, demo_dir: str = "") -> list[dict]:
    """Bind mounts for the helper: the roots' parents (same path inside), demo read-only."""
    parents: list[str] = []
    for root in (personal_root, shared_root):
        parent = os.path.dirname(root.rstrip("/")) or "/"
        if parent not in parents:
            parents.append(parent)
    specs = [bind_mount(p, p) for p in parents]
    if demo_dir:
        specs.append(bind_mount(demo_dir, DEMO_TARGET, read_only=True))
    return specs


def hub_can_chown(uid: int) -> bool:
    """True when this process may give files to ``uid`` (it is root, or it is that uid)."""
    euid = os.geteuid()
    return euid == 0 or euid == uid


def uses_task(mode: str, uid: int) -> bool:
    """Resolve ``folder_creation`` ("hub", "task", "auto") to: create by a helper?"""
    if mode == "auto":
        return not hub_can_chown(uid)
    return mode == "task"


def _demo_for_task(spawner: Any) -> str:
    demo = spawner.demo_notebooks_dir
    return demo if demo and os.path.isdir(demo) else ""


def _command(spawner: Any, demo: str) -> list[str]:
    return folder_task_command(
        spawner.personal_folder,
        spawner.lab_uid,
        spawner.lab_gid,
        spawner.personal_notebooks_dir,
        spawner.shared_notebooks_dir,
        DEMO_TARGET if demo else "",
    )


def _failure(detail: str) -> str:
    return (
        f"Your notebook folder could not be prepared by the helper ({detail.strip() or 'it failed'}); "
        "check that lab_root exists on the node and the lab image has a shell."
    )


async def run_folder_container(spawner: Any) -> None:
    """Create the folder with a one-shot root container on this Docker engine."""
    demo = _demo_for_task(spawner)
    host_config = spawner.client.create_host_config(
        mounts=folder_task_mounts(
            spawner.personal_notebooks_dir, spawner.shared_notebooks_dir, demo
        ),
        network_mode="none",  # the helper talks to nobody
    )
    try:
        container = await _create_helper(spawner, demo, host_config)
    except APIError as err:
        if "does not exist" in str(err):
            raise RuntimeError(_missing_parent(spawner)) from None
        raise
    cid = container["Id"]
    try:
        await spawner.docker("start", cid)
        result = await asyncio.wait_for(spawner.docker("wait", cid), TIMEOUT)
        if result.get("StatusCode") != 0:
            logs = await spawner.docker("logs", cid, stdout=False, stderr=True)
            raise RuntimeError(_failure(logs.decode("utf-8", "replace")[-300:]))
    finally:
        with contextlib.suppress(NotFound):
            await spawner.docker("remove_container", cid, force=True)


def _missing_parent(spawner: Any) -> str:
    return (
        f"The folder holding {spawner.personal_notebooks_dir} and {spawner.shared_notebooks_dir} "
        "does not exist on the node; create lab_root there (the NFS mount) before starting labs."
    )


async def _create_helper(spawner: Any, demo: str, host_config: dict) -> dict:
    return await spawner.docker(
        "create_container",
        image=spawner.image,
        command=_command(spawner, demo),
        user="0",
        entrypoint=[],
        host_config=host_config,
        labels={LABEL_HELPER: "true", LABEL_USER: spawner.lab_folder_name},
    )


async def run_folder_service(spawner: Any) -> None:
    """Create the folder with a one-shot root Swarm task, placed like the user's lab."""
    from docker.types import ContainerSpec, Placement, RestartPolicy, TaskTemplate

    demo = _demo_for_task(spawner)
    spec = ContainerSpec(
        image=spawner.image,
        command=_command(spawner, demo),
        user="0",
        mounts=folder_task_mounts(
            spawner.personal_notebooks_dir, spawner.shared_notebooks_dir, demo
        ),
        labels={LABEL_HELPER: "true", LABEL_USER: spawner.lab_folder_name},
    )
    template = TaskTemplate(
        container_spec=spec,
        restart_policy=RestartPolicy(condition="none"),
        placement=Placement(constraints=list(spawner.placement_constraints) or None),
        # Swarm has no "none" network; the host network adds no bridge, and the task talks to nobody
        networks=["host"],
    )
    name = f"{spawner.object_name}-folder"
    with contextlib.suppress(NotFound):
        await spawner.docker("remove_service", name)
    service = await spawner.docker(
        "create_service", template, name=name, labels={LABEL_HELPER: "true"}
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while loop.time() < deadline:
            tasks = await spawner.docker("tasks", filters={"service": service["ID"]})
            states = [t["Status"]["State"] for t in tasks]
            if "complete" in states:
                return
            failed = [t for t in tasks if t["Status"]["State"] in ("failed", "rejected")]
            if failed:
                raise RuntimeError(_failure(failed[0]["Status"].get("Err", "")))
            await asyncio.sleep(0.2)
        raise RuntimeError(f"Preparing the notebook folder took over {TIMEOUT} s; check the node.")
    finally:
        with contextlib.suppress(NotFound):
            await spawner.docker("remove_service", service["ID"])
