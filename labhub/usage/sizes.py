"""How much disk a personal folder takes, measured like ``du`` with a time bound; blocking disk reads."""

from __future__ import annotations

import os
import time


def human_size(size: int | None) -> str:
    """``size`` bytes for people (``1.5 GiB``); ``unknown`` for None."""
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover (the loop always returns)


def folder_bytes(path: str, seconds: float) -> tuple[int | None, bool]:
    """Disk bytes under ``path`` (each inode once, links not followed) and whether all was seen.

    The walk stops after ``seconds``: the bytes seen so far come back with False, so
    a huge folder on a slow share costs the hub a bounded time. A missing folder is
    (None, True): nothing to measure.
    """
    deadline = time.monotonic() + seconds
    try:
        top = os.lstat(path)
    except OSError:
        return None, True
    seen: set[tuple[int, int]] = set()
    total = top.st_blocks * 512
    pending = [path]
    while pending:
        if time.monotonic() > deadline:
            return total, False
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # a folder the hub may not read is left out, not an error
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
    return total, True
