"""What a root folder helper runs, decided without a daemon: its command, its mounts, when it is used.

Used when the hub cannot make a user's folder itself: the hub does not run as
root (so it cannot ``chown`` to the lab uid), or ``lab_root`` is mounted only on
the nodes that run labs. The engine classes run the helper (a one-shot
container on Docker, a one-shot task on Swarm); this module only says what it
does, which is what :func:`labhub.lab.folders.ensure_personal_folder` does on the
hub, with the owners and modes taken from :mod:`labhub.lab.folders`.

Every path, id and mode is passed as an argument to a fixed program (the
source of :mod:`labhub.lab.folders`), never pasted into it, so no user name can
reach the interpreter as code.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any

from labhub.lab import folders
from labhub.lab.folders import PERSONAL_MODE, lab_folder_modes
from labhub.lab.mounts import bind_mount

#: Label put on helper containers and services, so admins can find leftovers.
LABEL_HELPER = "org.labhub.folder-task"
#: Where the demo notebooks appear inside the helper (read-only).
DEMO_TARGET = "/labhub-demo"
#: How long a helper may take before the spawn fails.
TIMEOUT = 120

#: The helper's program: this very :mod:`labhub.lab.folders` file, run by the image's ``python3``.
#: Shell cannot open folders without following links, so the helper does not use it.
#: Arguments: folder uid gid folder_mode demo_dir subfolders, then (root, mode) pairs.
FOLDER_SCRIPT = inspect.getsource(folders) + "\n\nraise SystemExit(run_helper(sys.argv[1:]))\n"


#: The helper's capabilities, every other one dropped: it gives folders to the lab uid (CHOWN),
#: enters and sets modes on folders the lab uid owns (DAC_OVERRIDE, FOWNER) and keeps the shared
#: folder's setgid bit on a group root is not in (FSETID). No device nodes, no raw sockets.
HELPER_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID")


def helper_capabilities() -> dict[str, list[str]]:
    """``cap_drop``/``cap_add`` of the helper, the same on Docker and Swarm."""
    return {"cap_drop": ["ALL"], "cap_add": list(HELPER_CAPS)}


class FolderHelperError(RuntimeError):
    """The folder helper could not make the folder; the message is one sentence for the user."""


@dataclass(frozen=True)
class FolderJob:
    """One user's folder to make: its path, owner, the lab folders around it, the demo to copy."""

    folder: str
    uid: int
    gid: int
    personal_root: str
    shared_root: str
    demo_dir: str = ""
    #: Relative folders made inside ``folder`` where missing (a package folder's user sites).
    subfolders: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for path in (self.folder, self.personal_root, self.shared_root):
            if not path.startswith("/"):
                raise ValueError(f"Folder {path!r} must be an absolute path.")
        for sub in self.subfolders:
            parts = sub.split("/")
            if sub.startswith("/") or "," in sub or any(p in ("", ".", "..") for p in parts):
                raise ValueError(f"Subfolder {sub!r} must be a plain relative path.")


def helper_command(job: FolderJob) -> list[str]:
    """The helper's argv: the fixed program, then every path and mode as its own argument."""
    modes = [
        arg
        for path, mode in lab_folder_modes(job.personal_root, job.shared_root)
        for arg in (path, f"{mode:o}")
    ]
    return [
        "python3",
        "-I",  # isolated: no PYTHON* variables, no user site, no current folder on the path
        "-c",
        FOLDER_SCRIPT,
        job.folder,
        str(job.uid),
        str(job.gid),
        f"{PERSONAL_MODE:o}",
        DEMO_TARGET if job.demo_dir else "",
        ",".join(job.subfolders),
        *modes,
    ]


def helper_mounts(job: FolderJob) -> list[dict[str, Any]]:
    """Bind mounts for the helper: the roots' parents (same path inside), demo read-only."""
    parents: list[str] = []
    for root in (job.personal_root, job.shared_root):
        parent = os.path.dirname(root.rstrip("/")) or "/"
        if parent not in parents:
            parents.append(parent)
    specs = [bind_mount(p, p) for p in parents]
    if job.demo_dir:
        specs.append(bind_mount(job.demo_dir, DEMO_TARGET, read_only=True))
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


def is_dir(path: str) -> bool:
    """True for an existing folder (the demo folder is optional)."""
    return os.path.isdir(path)


def failure_message(detail: str) -> str:
    """One sentence for a helper that exited with an error, its last words kept."""
    return (
        f"Your notebook folder could not be prepared by the helper ({detail.strip() or 'it failed'}); "
        "check that lab_root exists on the node and the lab image has python3."
    )


def missing_parent_message(job: FolderJob) -> str:
    """One sentence for a helper whose bind source (lab_root on that node) does not exist."""
    return (
        f"The folder holding {job.personal_root} and {job.shared_root} does not exist on the "
        "node; create lab_root there (the NFS mount) before starting labs."
    )


def timeout_message() -> str:
    return f"Preparing the notebook folder took over {TIMEOUT} s; check the node."
