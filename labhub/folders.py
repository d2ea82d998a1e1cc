"""Create the lab's folders on the host with the right owner, before any container sees them.

Docker creates a missing bind-mount source as ``root:root 0755``; a lab user
then cannot save into it. labhub creates every folder itself first, owned by
the lab uid/gid. A new personal folder is built under a temporary name and
renamed into place, so a full disk or a crash never leaves a half-made folder
that a later spawn would take for a finished one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

PERSONAL_MODE = 0o700
#: setgid: files made in the shared folder keep the lab group, so the whole team can edit them.
SHARED_MODE = 0o2775
PERSONAL_ROOT_MODE = 0o751


def lab_folder_modes(personal_root: str, shared_root: str) -> list[tuple[str, int]]:
    """The two lab-wide folders and their modes, in the order they are made (hub and helper alike)."""
    return [(personal_root, PERSONAL_ROOT_MODE), (shared_root, SHARED_MODE)]


class LabFolderError(OSError):
    """A lab folder could not be made; the message says which and what to change."""


def _explain(err: OSError, path: str) -> str:
    if err.errno == errno.ENOSPC:
        return f"The disk holding {path} is full; free some space and start the server again."
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"labhub may not write or chown {path} ({err.strerror}); run the hub as root or as the "
            "lab uid, or make the folder writable for it."
        )
    return f"Could not prepare {path}: {err.strerror or err}."


def _ensure_dir(path: str, uid: int, gid: int, mode: int) -> None:
    """Make ``path`` a real directory owned by uid:gid with ``mode`` (a symlink is refused)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise LabFolderError(
            f"{path} exists but is not a folder (a symlink or a file); move it away."
        )
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def ensure_lab_folders(personal_root: str, shared_root: str, uid: int, gid: int) -> None:
    """Create the personal-notebooks root and the shared folder if missing; fix their owner."""
    try:
        for path in (personal_root, shared_root):
            parent = os.path.dirname(path.rstrip("/"))
            if parent and not os.path.isdir(parent):
                os.makedirs(parent, 0o755, exist_ok=True)
        for path, mode in lab_folder_modes(personal_root, shared_root):
            _ensure_dir(path, uid, gid, mode)
    except LabFolderError:
        raise
    except OSError as err:
        raise LabFolderError(_explain(err, err.filename or personal_root)) from None


def _copy_tree_owned(src: Path, dest: Path, uid: int, gid: int) -> None:
    """Copy demo files into ``dest`` owned by uid:gid; existing files are never overwritten."""
    for entry in sorted(src.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        target = dest / entry.name
        if entry.is_dir():
            if not target.exists():
                target.mkdir(0o700)
                os.chown(target, uid, gid)
            _copy_tree_owned(entry, target, uid, gid)
        elif not target.exists():
            shutil.copyfile(entry, target)
            os.chmod(target, 0o600)
            os.chown(target, uid, gid)


def ensure_personal_folder(
    folder: str, uid: int, gid: int, demo_notebooks: str | None = None
) -> bool:
    """Make ``folder`` exist, owned by uid:gid, mode 0700; return True when it was new.

    A new folder gets a copy of ``demo_notebooks`` (if given and present). An
    existing folder is never filled again, and its files are never touched.
    """
    if os.path.lexists(folder):
        try:
            _ensure_dir(folder, uid, gid, PERSONAL_MODE)
        except LabFolderError:
            raise
        except OSError as err:
            raise LabFolderError(_explain(err, folder)) from None
        return False
    parent = os.path.dirname(folder)
    staging = None
    try:
        staging = tempfile.mkdtemp(prefix=".creating-", dir=parent)
        os.chmod(staging, PERSONAL_MODE)
        os.chown(staging, uid, gid)
        if demo_notebooks and os.path.isdir(demo_notebooks):
            _copy_tree_owned(Path(demo_notebooks), Path(staging), uid, gid)
        try:
            # rename refuses to replace a non-empty folder: a concurrent spawn that won keeps its folder
            os.rename(staging, folder)
            staging = None
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            return ensure_personal_folder(folder, uid, gid)
        return True
    except LabFolderError:
        raise
    except OSError as err:
        raise LabFolderError(_explain(err, folder)) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
