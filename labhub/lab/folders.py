"""Create the lab's folders on the host with the right owner, before any container sees them.

Docker creates a missing bind-mount source as ``root:root 0755``; a lab user
then cannot save into it. labhub creates every folder itself first, owned by
the lab uid/gid. A new personal folder is built under a temporary name and
renamed into place, so a full disk or a crash never leaves a half-made folder
that a later spawn would take for a finished one.

Anyone running as the lab uid can write ``personal_notebooks``, so nothing
below it is ever reached through a path that a link could redirect: every step
works on directory file descriptors opened with ``O_NOFOLLOW``, the staging
folder stays private to this process until it is finished, and the parent is
checked again before the rename. ``lab_root`` and the folders above it belong
to the admin and are opened the ordinary way.

The module uses the standard library only: the folder helper (a root container
or Swarm task) runs this very file with ``python3 -c``, see
:mod:`labhub.lab.folder_task` and :func:`run_helper`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import sys

PERSONAL_MODE = 0o700
#: setgid: files made in the shared folder keep the lab group, so the whole team can edit them.
SHARED_MODE = 0o2775
PERSONAL_ROOT_MODE = 0o751
#: Demo notebooks copied into a new personal folder: the lab uid's alone.
DEMO_FILE_MODE = 0o600

#: A directory, never through a link at the last step (ELOOP), never a file (ENOTDIR).
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_STAGING_PREFIX = ".creating-"
#: Subfolders made for the user inside their folder (a package folder's user sites): like pip's.
SUBFOLDER_MODE = 0o755


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


def _not_a_folder(path: str) -> LabFolderError:
    return LabFolderError(f"{path} exists but is not a folder (a symlink or a file); move it away.")


def _moved(path: str) -> LabFolderError:
    return LabFolderError(
        f"{path} was moved or replaced while labhub was preparing it; start the server again, "
        "and check who else writes the lab folders."
    )


def _open_dir(name: str, dir_fd: int, path: str) -> int:
    """Open the folder ``name`` inside ``dir_fd``; a link or a file there is refused."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _not_a_folder(path) from None
        raise


def _open_parent(path: str) -> int:
    """Open the folder holding ``path``: its own parent (the admin's) as usual, itself no-follow."""
    parent, name = os.path.split(path)
    outer = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _open_dir(name, outer, path)
    finally:
        os.close(outer)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _set_owner_mode(fd: int, uid: int, gid: int, mode: int) -> None:
    """Give the open file ``fd`` to uid:gid with ``mode``; nothing changes when it already is."""
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.fchown(fd, uid, gid)
        st = os.fstat(fd)
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)


def _ensure_dir_at(dir_fd: int, name: str, path: str, uid: int, gid: int, mode: int) -> int:
    """Make ``name`` inside ``dir_fd`` a real folder owned by uid:gid with ``mode``; return its fd."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, mode, dir_fd=dir_fd)
    fd = _open_dir(name, dir_fd, path)
    try:
        _set_owner_mode(fd, uid, gid, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _ensure_lab_folder(path: str, uid: int, gid: int, mode: int) -> None:
    """Create one lab-wide folder (``personal_notebooks`` or ``shared_notebooks``) and fix it."""
    path = path.rstrip("/")
    parent, name = os.path.split(path)
    try:
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, 0o755, exist_ok=True)
        outer = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.close(_ensure_dir_at(outer, name, path, uid, gid, mode))
        finally:
            os.close(outer)
    except LabFolderError:
        raise
    except OSError as err:
        raise LabFolderError(_explain(err, path)) from None


def ensure_lab_folders(personal_root: str, shared_root: str, uid: int, gid: int) -> None:
    """Create the personal-notebooks root and the shared folder if missing; fix their owner."""
    for path, mode in lab_folder_modes(personal_root, shared_root):
        _ensure_lab_folder(path, uid, gid, mode)


def _copy_demos(src: str, dest_fd: int, uid: int, gid: int) -> None:
    """Copy the demo tree into the open folder ``dest_fd``; links and dot files are skipped."""
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(entry.name, PERSONAL_MODE, dir_fd=dest_fd)
            sub = _open_dir(entry.name, dest_fd, entry.path)
            try:
                _copy_demos(entry.path, sub, uid, gid)
                _set_owner_mode(sub, uid, gid, PERSONAL_MODE)
            finally:
                os.close(sub)
        elif entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as source:
                out = os.open(entry.name, _NEW_FILE_FLAGS, DEMO_FILE_MODE, dir_fd=dest_fd)
                with os.fdopen(out, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                    target.flush()
                    _set_owner_mode(target.fileno(), uid, gid, DEMO_FILE_MODE)


def _ensure_subfolders(fd: int, subfolders: tuple[str, ...], uid: int, gid: int) -> None:
    """Make each relative path of ``subfolders`` inside the open folder ``fd`` where it is missing.

    The user owns everything below ``fd``: what they have is never changed, only a missing
    folder is added (and given to them), and a link or a file on the way ends that path
    quietly, as the user left it.
    """
    for relative in subfolders:
        current = os.dup(fd)
        try:
            for part in relative.split("/"):
                made = False
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, SUBFOLDER_MODE, dir_fd=current)
                    made = True
                try:
                    sub = os.open(part, _DIR_FLAGS, dir_fd=current)
                except OSError as err:
                    if err.errno in (errno.ELOOP, errno.ENOTDIR):
                        break
                    raise
                os.close(current)
                current = sub
                if made:
                    os.fchown(current, uid, gid)
        finally:
            os.close(current)


def _make_staging(parent_fd: int, parent: str) -> tuple[str, int]:
    """A new private folder (this process's, 0700) in ``parent_fd``: its name and an open fd."""
    for _ in range(100):
        name = _STAGING_PREFIX + secrets.token_hex(6)
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            continue
        fd = _open_dir(name, parent_fd, os.path.join(parent, name))
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            os.close(fd)
            raise _moved(os.path.join(parent, name))
        return name, fd
    raise LabFolderError(f"Could not pick a free temporary name in {parent}; clean it up.")


def _empty_dir(fd: int) -> None:
    """Remove everything inside the open folder ``fd``, following no link."""
    for name in os.listdir(fd):
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                _empty_dir(sub)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)


def _remove_staging(parent_fd: int, name: str, fd: int) -> None:
    """Remove the staging folder, only if ``name`` is still the folder ``fd`` points to."""
    try:
        if _same_file(os.stat(name, dir_fd=parent_fd, follow_symlinks=False), os.fstat(fd)):
            _empty_dir(fd)
            os.rmdir(name, dir_fd=parent_fd)
    except OSError:
        pass


def _make_personal_folder(
    parent_fd: int,
    folder: str,
    uid: int,
    gid: int,
    demo: str | None,
    mode: int,
    subfolders: tuple[str, ...] = (),
) -> bool:
    parent, name = os.path.split(folder)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        fd = None
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _not_a_folder(folder) from None
        raise
    if fd is not None:
        try:
            _set_owner_mode(fd, uid, gid, mode)
            _ensure_subfolders(fd, subfolders, uid, gid)
        finally:
            os.close(fd)
        return False

    staging, staging_fd = _make_staging(parent_fd, parent)
    renamed = False
    try:
        if demo and os.path.isdir(demo):
            _copy_demos(demo, staging_fd, uid, gid)
        _ensure_subfolders(staging_fd, subfolders, uid, gid)
        # the last step: only the finished folder is given to the lab uid
        _set_owner_mode(staging_fd, uid, gid, mode)
        if not _same_file(os.lstat(parent), os.fstat(parent_fd)):
            raise _moved(parent)
        try:
            # rename refuses to replace a non-empty folder: a concurrent spawn that won keeps its folder
            os.rename(staging, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            renamed = True
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            _remove_staging(parent_fd, staging, staging_fd)
            return _make_personal_folder(parent_fd, folder, uid, gid, None, mode, subfolders)
        placed = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if not _same_file(placed, os.fstat(staging_fd)):
            raise _moved(folder)
        return True
    finally:
        if not renamed:
            _remove_staging(parent_fd, staging, staging_fd)
        os.close(staging_fd)


def _ensure_personal(
    folder: str,
    uid: int,
    gid: int,
    demo: str | None,
    mode: int,
    subfolders: tuple[str, ...] = (),
) -> bool:
    folder = folder.rstrip("/")
    try:
        parent_fd = _open_parent(os.path.dirname(folder))
        try:
            return _make_personal_folder(parent_fd, folder, uid, gid, demo, mode, subfolders)
        finally:
            os.close(parent_fd)
    except LabFolderError:
        raise
    except OSError as err:
        raise LabFolderError(_explain(err, folder)) from None


def ensure_personal_folder(
    folder: str,
    uid: int,
    gid: int,
    demo_notebooks: str | None = None,
    subfolders: tuple[str, ...] = (),
) -> bool:
    """Make ``folder`` exist, owned by uid:gid, mode 0700; return True when it was new.

    A new folder gets a copy of ``demo_notebooks`` (if given and present). An
    existing folder is never filled again, and its files are never touched; the
    relative ``subfolders`` are made in it, new or not, where they are missing.
    No link under the folder's parent is ever followed.
    """
    return _ensure_personal(folder, uid, gid, demo_notebooks, PERSONAL_MODE, subfolders)


def run_helper(argv: list[str]) -> int:
    """The folder helper's entry point; ``argv`` as :func:`labhub.lab.folder_task.helper_command` builds it.

    Arguments: folder uid gid folder_mode demo_dir subfolders (comma-separated), then
    (lab folder, mode) pairs; modes in octal. Returns the exit status; a failure is one
    sentence on stderr.
    """
    folder, uid, gid, folder_mode, demo, subfolders, *pairs = argv
    try:
        for i in range(0, len(pairs) - 1, 2):
            _ensure_lab_folder(pairs[i], int(uid), int(gid), int(pairs[i + 1], 8))
        _ensure_personal(
            folder,
            int(uid),
            int(gid),
            demo or None,
            int(folder_mode, 8),
            tuple(s for s in subfolders.split(",") if s),
        )
    except LabFolderError as err:
        print(err, file=sys.stderr)
        return 3
    return 0
