"""labhub.lab.folder_task: the helper's command and mounts without a daemon; LabDockerSpawner with folder_creation="task"."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re

import pytest

from labhub.lab import folder_task, folders
from labhub.lab.names import user_folder_name

from ..conftest import lab_spawner_config
from ..support.contents import get_file, put_file
from ..support.hub import SpawnFailed

JOB = folder_task.FolderJob("/lab/p/x", 2100, 2101, "/lab/p", "/lab/s")


def test_command_passes_paths_as_arguments_not_program_text():
    hostile = "/lab/p/$(touch /tmp/pwned); rm -rf /"
    argv = folder_task.helper_command(dataclasses.replace(JOB, folder=hostile))
    assert argv[:3] == ["python3", "-I", "-c"]
    assert argv[3] == folder_task.FOLDER_SCRIPT  # fixed text, the same for every user
    assert hostile not in argv[3]
    assert argv[4:] == [hostile, "2100", "2101", "700", "", "", "/lab/p", "751", "/lab/s", "2775"]


def test_modes_come_from_the_folders_module_not_the_script():
    # the program is the folders module itself: modes are written once, there
    assert folder_task.FOLDER_SCRIPT.startswith(inspect.getsource(folders))
    helper_main = folder_task.FOLDER_SCRIPT[len(inspect.getsource(folders)) :]
    assert not re.search(r"\b(700|751|2775)\b", helper_main)
    argv = folder_task.helper_command(JOB)
    assert argv[argv.index("/lab/p") + 1] == f"{folders.PERSONAL_ROOT_MODE:o}"
    assert argv[argv.index("/lab/s") + 1] == f"{folders.SHARED_MODE:o}"


def test_job_refuses_relative_paths():
    with pytest.raises(ValueError, match="absolute"):
        folder_task.FolderJob("alice", 2100, 2100, "/lab/p", "/lab/s")


def test_mounts_are_the_parents_once_and_demo_read_only():
    job = folder_task.FolderJob(
        "/lab/personal/a", 1, 1, "/lab/personal", "/lab/shared", "/opt/demo"
    )
    specs = folder_task.helper_mounts(job)
    assert [(m["Source"], m["Target"], m["ReadOnly"]) for m in specs] == [
        ("/lab", "/lab", False),
        ("/opt/demo", folder_task.DEMO_TARGET, True),
    ]
    assert folder_task.helper_command(job)[8] == folder_task.DEMO_TARGET


def test_auto_uses_the_hub_only_when_it_can_chown():
    assert folder_task.uses_task("task", 2100)
    assert not folder_task.uses_task("hub", 2100)
    assert folder_task.uses_task("auto", 2100) is (os.geteuid() not in (0, 2100))
    assert folder_task.uses_task("auto", os.geteuid()) is False


def test_swarm_defaults_to_task_and_docker_to_auto():
    from labhub.spawner.docker import LabDockerSpawner
    from labhub.spawner.swarm import LabSwarmSpawner

    assert LabSwarmSpawner().folder_creation == "task"
    assert LabDockerSpawner().folder_creation == "auto"


@pytest.mark.docker
def test_docker_spawner_folder_made_by_a_helper_container(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client, tmp_path
):
    demo = tmp_path / "demo"
    (demo / "intro").mkdir(parents=True)
    (demo / "welcome.txt").write_text("hello")
    (demo / "intro" / "step1.txt").write_text("first steps")
    (demo / ".hidden").write_text("not copied")
    os.symlink("/etc/passwd", demo / "link")
    extra = f"""
c.LabDockerSpawner.folder_creation = "task"
c.LabDockerSpawner.demo_notebooks_dir = {str(demo)!r}
"""
    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))
    with pytest.raises(SpawnFailed):  # lab_root itself must exist: the helper mounts it
        hub.spawn("carol helper", wait=30)
    assert "create lab_root there" in hub.log_text()
    hub.stop_server("carol helper")
    lab_root.mkdir()  # as the NFS mount would be on every node
    name = hub.spawn("carol helper")["name"]
    folder = lab_root / "personal_notebooks" / user_folder_name(name)
    st = folder.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (2100, 2100, 0o700)
    shared = (lab_root / "shared_notebooks").stat()
    assert (shared.st_uid, shared.st_gid, shared.st_mode & 0o7777) == (2100, 2100, 0o2775)
    assert sorted(p.name for p in folder.iterdir()) == ["intro", "welcome.txt"]
    for path in (folder / "welcome.txt", folder / "intro", folder / "intro" / "step1.txt"):
        assert (path.stat().st_uid, path.stat().st_gid) == (2100, 2100), path
    assert not any(p.name.startswith(".creating-") for p in folder.parent.iterdir())
    # no helper container is left behind
    assert (
        docker_client.containers.list(all=True, filters={"label": folder_task.LABEL_HELPER}) == []
    )

    # the user edits a demo file: a later spawn never copies the demo over it
    put_file(hub, name, "work/welcome.txt", "my own version")
    hub.stop_server(name)
    (demo / "new-demo.txt").write_text("added later")
    hub.spawn(name)
    r = get_file(hub, name, "work/welcome.txt")
    assert r.status_code == 200 and r.json()["content"] == "my own version"
    assert not (folder / "new-demo.txt").exists()
    hub.stop_server(name)
