"""labhub.lab.folders on the real filesystem: owner, mode, demo copies, nothing half-made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from labhub.lab.folders import LabFolderError, ensure_lab_folders, ensure_personal_folder

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to the lab uid needs root")


def owner_mode(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def test_lab_folders_created_with_owner(tmp_path):
    personal, shared = tmp_path / "lab/personal_notebooks", tmp_path / "lab/shared_notebooks"
    ensure_lab_folders(str(personal), str(shared), 2100, 2100)
    assert owner_mode(personal) == (2100, 2100, 0o751)
    assert owner_mode(shared) == (2100, 2100, 0o2775)
    # a second call changes nothing and fixes a wrong owner
    os.chown(shared, 0, 0)
    ensure_lab_folders(str(personal), str(shared), 2100, 2100)
    assert owner_mode(shared) == (2100, 2100, 0o2775)


def test_personal_folder_new_then_existing(tmp_path):
    demos = tmp_path / "demos"
    (demos / "sub").mkdir(parents=True)
    (demos / "intro.ipynb").write_text("{}")
    (demos / "sub" / "data.csv").write_text("x\n")
    (demos / ".secret").write_text("not copied")
    folder = tmp_path / "alice"
    assert ensure_personal_folder(str(folder), 2100, 2100, str(demos)) is True
    assert owner_mode(folder) == (2100, 2100, 0o700)
    assert owner_mode(folder / "intro.ipynb") == (2100, 2100, 0o600)
    assert owner_mode(folder / "sub") == (2100, 2100, 0o700)
    assert (folder / "sub" / "data.csv").read_text() == "x\n"
    assert not (folder / ".secret").exists()
    (folder / "intro.ipynb").write_text("mine now")
    (demos / "new.ipynb").write_text("{}")
    assert ensure_personal_folder(str(folder), 2100, 2100, str(demos)) is False
    assert (folder / "intro.ipynb").read_text() == "mine now"
    assert not (folder / "new.ipynb").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".creating")] == []


def test_symlink_in_place_of_a_folder_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "mallory")
    with pytest.raises(LabFolderError, match="not a folder"):
        ensure_personal_folder(str(tmp_path / "mallory"), 2100, 2100)
    assert owner_mode(tmp_path / "elsewhere")[0] == 0


def test_full_disk_leaves_no_half_made_folder(tmp_path):
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        demos = tmp_path / "demos"
        demos.mkdir()
        (demos / "big.bin").write_bytes(os.urandom(256 * 1024))
        with pytest.raises(LabFolderError, match="full"):
            ensure_personal_folder(str(mnt / "bob"), 2100, 2100, str(demos))
        assert os.listdir(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_unwritable_root_gives_one_sentence(tmp_path):
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(LabFolderError) as info:
            ensure_personal_folder(str(ro / "carol"), 2100, 2100)
        assert "\n" not in str(info.value) and str(ro) in str(info.value)
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_works_when_the_hub_runs_as_the_lab_uid(tmp_path):
    """No chown privilege: the same code, run as uid 2100 in a lab_root it owns, still works."""
    import shutil
    import subprocess
    import tempfile

    from labhub.lab import folder_task

    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o755)
        lab_root = base / "lab"
        lab_root.mkdir()
        os.chown(lab_root, 2100, 2100)
        demos = base / "demos"
        demos.mkdir()
        (demos / "welcome.txt").write_text("hello")
        personal, shared = lab_root / "personal_notebooks", lab_root / "shared_notebooks"
        job = folder_task.FolderJob(str(personal / "dan"), 2100, 2100, str(personal), str(shared))
        argv = folder_task.helper_command(job)
        argv[0], argv[8] = shutil.which("python3", path="/usr/bin:/bin"), str(demos)
        result = subprocess.run(
            argv, user=2100, group=2100, extra_groups=[], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert owner_mode(personal / "dan") == (2100, 2100, 0o700)
        assert owner_mode(personal / "dan" / "welcome.txt") == (2100, 2100, 0o600)
        assert owner_mode(shared) == (2100, 2100, 0o2775)
    finally:
        shutil.rmtree(base)


@pytest.mark.security
def test_user_sites_made_in_new_and_old_package_folders_never_through_a_link(tmp_path):
    """A package folder gets its user sites, new or not; what the user put there is left alone."""
    sites = ("lib/python3.11/site-packages", "lib/python3.12/site-packages")
    new = tmp_path / "ann"
    assert ensure_personal_folder(str(new), 2100, 2100, None, sites) is True
    for site in sites:
        assert owner_mode(new / site) == (2100, 2100, 0o755)
    assert owner_mode(new / "lib") == (2100, 2100, 0o755)

    # an old folder without them gets them; the user's own files and modes stay
    old = tmp_path / "bob"
    (old / "lib" / "python3.11").mkdir(parents=True)
    os.chmod(old / "lib", 0o700)
    (old / "lib" / "python3.11" / "mine.txt").write_text("kept")
    os.chown(old / "lib", 2100, 2100)
    assert ensure_personal_folder(str(old), 2100, 2100, None, sites) is False
    assert owner_mode(old / "lib") == (2100, 2100, 0o700)
    assert (old / "lib" / "python3.11" / "mine.txt").read_text() == "kept"
    assert owner_mode(old / "lib" / "python3.12" / "site-packages")[:2] == (2100, 2100)

    # a link on the way is the user's business: nothing is made where it points
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    mallory = tmp_path / "mallory"
    mallory.mkdir()
    os.symlink(elsewhere, mallory / "lib")
    assert ensure_personal_folder(str(mallory), 2100, 2100, None, sites) is False
    assert list(elsewhere.iterdir()) == [] and os.path.islink(mallory / "lib")
