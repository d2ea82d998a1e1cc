"""The host side of the warm pool: slot folders, and the user's folders bind-mounted onto them.

The pool folder is made a shared mount, so a bind mount made under it on the
host reaches the pool container that mounted that slot with ``rslave``
propagation, and that container only: each container mounts its own slot.

A read-only folder is made read-only before it is attached under the pool folder
(the new mount API: a detached copy, its flag set, then moved into place): a
remount after the bind would change the host's mount only, while the container
has already received its own writable copy by propagation.

The user's folder is opened without following any link and mounted through its
file descriptor, so a lab-uid process that swaps a folder for a link between the
check and the mount cannot make root mount something else. Slot folders are
removed with ``rmdir`` only, after their mounts are gone: a slot that still holds a
user's folder is never emptied.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
from collections.abc import Iterator

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

# the new mount API (Linux 5.12 for mount_setattr); one syscall number on every architecture
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442
OPEN_TREE_CLONE = 0x1
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4

_O_PATH = getattr(os, "O_PATH", 0o10000000)


class PoolMountError(OSError):
    """A slot could not be prepared or released; the message is one sentence."""


_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _mount(source: str | None, target: str, flags: int) -> None:
    result = _lib().mount(
        source.encode() if source else None, target.encode(), None, ctypes.c_ulong(flags), None
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _syscall(number: int, *args: object) -> int:
    result = _lib().syscall(ctypes.c_long(number), *args)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def _bind_read_only(fd: int, target: str) -> None:
    """Mount a read-only copy of the tree at ``fd`` on ``target``: read-only before it is attached.

    Every copy that propagation makes of it (the pool container's) is read-only too.
    """
    empty = b""
    tree = _syscall(
        SYS_OPEN_TREE,
        ctypes.c_int(fd),
        ctypes.c_char_p(empty),
        ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE),
    )
    try:
        attr = _MountAttr(attr_set=MOUNT_ATTR_RDONLY)
        _syscall(
            SYS_MOUNT_SETATTR,
            ctypes.c_int(tree),
            ctypes.c_char_p(empty),
            ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        )
        _syscall(
            SYS_MOVE_MOUNT,
            ctypes.c_int(tree),
            ctypes.c_char_p(empty),
            ctypes.c_int(AT_FDCWD),
            ctypes.c_char_p(target.encode()),
            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
        )
    finally:
        os.close(tree)


def _umount(target: str) -> None:
    if _lib().umount2(target.encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


def _unescape(field: str) -> str:
    # /proc/self/mountinfo writes space, tab, newline and backslash as octal escapes
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_table() -> list[tuple[str, str]]:
    """(mount point, optional fields) of every mount this process sees."""
    rows = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split(" ")
            separator = fields.index("-")
            rows.append((_unescape(fields[4]), " ".join(fields[6:separator])))
    return rows


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path``, deepest first (the order to release them in)."""
    path = os.path.realpath(path)
    points = {p for p, _ in mount_table() if p == path or p.startswith(path.rstrip("/") + "/")}
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def is_shared_mount(path: str) -> bool:
    path = os.path.realpath(path)
    return any(p == path and "shared:" in opts for p, opts in mount_table())


def ensure_pool_dir(pool_dir: str) -> None:
    """Make ``pool_dir`` a root-only folder and a shared mount point.

    Needs root in the Docker engine's mount namespace (a hub on the host, or a hub
    container given that namespace's pool folder with ``rshared`` propagation).
    """
    try:
        os.makedirs(pool_dir, mode=0o700, exist_ok=True)
        st = os.lstat(pool_dir)
        if not os.path.isdir(pool_dir) or os.path.islink(pool_dir) or st.st_uid != 0:
            raise PoolMountError(
                errno.EPERM, f"The warm pool folder {pool_dir} must be a folder owned by root."
            )
        os.chmod(pool_dir, 0o700)
        if is_shared_mount(pool_dir):
            return
        if os.path.realpath(pool_dir) not in {p for p, _ in mount_table()}:
            _mount(pool_dir, pool_dir, MS_BIND)
        _mount(None, pool_dir, MS_SHARED)
    except PoolMountError:
        raise
    except OSError as err:
        raise PoolMountError(
            err.errno or errno.EPERM,
            f"The warm pool needs root to mount folders under {pool_dir} ({err.strerror}); "
            "run the hub as root on the Docker host or set warm_pool_size = 0.",
        ) from None


def make_slot(pool_dir: str, slot: str, count: int) -> None:
    """Create the slot's empty folders, root-owned; Docker mounts them into the container."""
    base = os.path.join(pool_dir, slot)
    os.mkdir(base, 0o700)
    for index in range(count):
        os.mkdir(os.path.join(base, str(index)), 0o755)


def _open_folder(path: str) -> int:
    """An O_PATH descriptor of ``path``, reached without following any link."""
    if not os.path.isabs(path):
        raise PoolMountError(errno.EINVAL, f"{path} is not an absolute path.")
    fd = os.open("/", _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in [p for p in path.split("/") if p]:
            if part == "..":
                raise PoolMountError(errno.EINVAL, f"{path} climbs out with '..'.")
            try:
                nxt = os.open(
                    part, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
            except OSError as err:
                raise PoolMountError(
                    err.errno, f"{path} cannot be mounted: {part} is {_why(err)}."
                ) from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _why(err: OSError) -> str:
    if err.errno in (errno.ELOOP, errno.ENOTDIR):
        return "a link or not a folder"
    if err.errno == errno.ENOENT:
        return "missing"
    return err.strerror or "unreadable"


def bind_into_slot(source: str, target: str, read_only: bool) -> tuple[int, int]:
    """Bind ``source`` onto the slot folder ``target``; return the device and inode bound.

    The waiter in the container compares these with what it sees at the slot. A
    read-only bind is read-only before it appears under the pool folder.
    """
    fd = _open_folder(source)
    try:
        st = os.fstat(fd)
        # the descriptor, not the path: what was checked is what is mounted
        if read_only:
            _bind_read_only(fd, target)
        else:
            _mount(f"/proc/self/fd/{fd}", target, MS_BIND | MS_REC)
        return st.st_dev, st.st_ino
    except OSError as err:
        if isinstance(err, PoolMountError):
            raise
        if err.errno == errno.ENOSYS:
            raise PoolMountError(
                errno.ENOSYS,
                f"{source} could not be mounted read-only into a warm lab: the kernel has no "
                "mount_setattr (Linux 5.12).",
            ) from None
        raise PoolMountError(
            err.errno or errno.EPERM,
            f"{source} could not be mounted into a warm lab ({err.strerror}).",
        ) from None
    finally:
        os.close(fd)


def seen_in_container(pid: int, expected: dict[str, tuple[int, int, bool]]) -> str:
    """What is wrong with the slots as the container of ``pid`` sees them, "" if nothing.

    The hub looks itself, through ``/proc/{pid}/root``, before any process runs in the
    container with the user's folders: a mismatch there is the hub's own (its mounts
    do not reach the engine's containers), not anything a user did. "" as well when
    the hub cannot look (another pid namespace, or the container is gone).
    """
    root = f"/proc/{pid}/root"
    for target, (dev, ino, read_only) in expected.items():
        path = root + target
        try:
            st = os.stat(path)
            flags = os.statvfs(path).f_flag
        except OSError:
            return ""
        if (st.st_dev, st.st_ino) != (dev, ino):
            return f"the container does not see the folder mounted for it at {target}"
        if read_only and not flags & os.ST_RDONLY:
            return f"the container sees {target} writable, mounted read-only for it"
    return ""


def release_slot(pool_dir: str, slot: str) -> None:
    """Unmount whatever is bound under the slot, then remove its empty folders.

    ``rmdir`` only: if anything is still mounted there, the folder stays, and the
    user's files with it.
    """
    base = os.path.join(pool_dir, slot)
    if os.path.dirname(os.path.normpath(base)) != os.path.normpath(pool_dir):
        raise PoolMountError(errno.EINVAL, f"{slot!r} is not a slot name.")
    for point in mounts_under(base):
        try:
            _umount(point)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOENT):
                raise PoolMountError(
                    err.errno, f"Slot {slot} could not be released ({err.strerror})."
                ) from None
    if not os.path.isdir(base) or os.path.islink(base):
        return
    for name in os.listdir(base):
        try:
            os.rmdir(os.path.join(base, name))
        except OSError:
            return  # still in use or not empty: leave it, never delete inside it
    with contextlib.suppress(OSError):
        os.rmdir(base)


def slots(pool_dir: str) -> Iterator[str]:
    """The slot folders under the pool folder."""
    try:
        names = os.listdir(pool_dir)
    except FileNotFoundError:
        return
    for name in names:
        if os.path.isdir(os.path.join(pool_dir, name)):
            yield name
