"""labhub.lab.folders at spawn on a full or read-only lab_root: one clear sentence, no half-made folder.

The sentence reaches the user (the spawn page, the API answer) and the admin (the hub log).

The test makes its own small filesystems (a tmpfs of a few hundred KiB, a
read-only bind mount) under its temporary folder and unmounts them afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from ..conftest import lab_spawner_config, unavailable
from ..support.faults import lab_containers
from ..support.hub import SpawnFailed

pytestmark = [pytest.mark.docker, pytest.mark.reliability]


def mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode:
        unavailable(f"mount {' '.join(args)} failed: {result.stderr.strip()}")


@contextlib.contextmanager
def mounted(target: Path):
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def demo_folder(tmp_path: Path, size: int) -> Path:
    demos = tmp_path / "demos"
    demos.mkdir()
    (demos / "welcome.ipynb").write_bytes(b"x" * size)
    return demos


def spawn_error(hub, user: str) -> str:
    with pytest.raises(SpawnFailed) as failed:
        hub.spawn(user, wait=60)
    return failed.value.text


def assert_nothing_half_made(lab_root: Path) -> None:
    personal_root = lab_root / "personal_notebooks"
    if personal_root.exists():
        assert os.listdir(personal_root) == [], os.listdir(personal_root)


def test_disk_full_at_first_spawn(hub_factory, lab_image, tmp_path, lab_prefix, docker_client):
    lab_root = tmp_path / "lab"
    lab_root.mkdir()
    mount("-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(lab_root))
    with mounted(lab_root):
        # the demo notebooks no longer fit once the filler takes the space
        demos = demo_folder(tmp_path, 200_000)
        (lab_root / "filler").write_bytes(b"\0" * 200_000)
        config = lab_spawner_config(
            lab_image,
            lab_root,
            lab_prefix,
            f"c.LabDockerSpawner.demo_notebooks_dir = {str(demos)!r}",
        )
        hub = hub_factory(config)
        message = spawn_error(hub, "pat")
        assert "disk holding" in message and "is full" in message, message
        assert "Traceback" not in message
        assert "is full; free some space" in hub.log_text()
        # the spawn page reads the same sentence from the progress stream
        failed = hub.progress_events("pat")[-1]
        assert failed.get("failed") and "is full" in failed["message"], failed
        assert_nothing_half_made(lab_root)
        assert lab_containers(docker_client, lab_prefix) == []

        # space freed: the same user starts, with a complete folder
        (lab_root / "filler").unlink()
        hub.spawn("pat")
        assert (lab_root / "personal_notebooks" / "pat" / "welcome.ipynb").stat().st_size == 200_000
        hub.stop_server("pat")


def test_lab_root_read_only(hub_factory, lab_image, tmp_path, lab_prefix, docker_client):
    lab_root = tmp_path / "lab"
    lab_root.mkdir()
    mount("--bind", str(lab_root), str(lab_root))
    with mounted(lab_root):
        mount("-o", "remount,ro,bind", str(lab_root))
        hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix))
        message = spawn_error(hub, "quinn")
        assert "may not write or chown" in message and "Read-only" in message, message
        assert "Traceback" not in message
        log = hub.log_text()
        assert "Lab folder for quinn not ready" in log
        failed = hub.progress_events("quinn")[-1]
        assert failed.get("failed") and "may not write" in failed["message"], failed
        assert_nothing_half_made(lab_root)
        assert lab_containers(docker_client, lab_prefix) == []


def test_personal_root_read_only_after_first_spawn(
    hub_factory, lab_image, tmp_path, lab_prefix, docker_client
):
    """A new user on a read-only personal root is refused cleanly; an existing one is not harmed."""
    lab_root = tmp_path / "lab"
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix))
    hub.spawn("rex")
    hub.stop_server("rex")
    personal_root = lab_root / "personal_notebooks"
    before = sorted(os.listdir(personal_root))
    mount("--bind", str(personal_root), str(personal_root))
    with mounted(personal_root):
        mount("-o", "remount,ro,bind", str(personal_root))
        message = spawn_error(hub, "sam")
        assert "may not write or chown" in message, message
        assert sorted(os.listdir(personal_root)) == before == ["rex"]
        assert lab_containers(docker_client, lab_prefix) == []
