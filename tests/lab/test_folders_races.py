"""A real lab-uid process races labhub's root folder code: nothing outside the lab's folders changes.

The racer runs as uid 2100 (as a host account, an NFS client or the hub's own
``labuser`` could) and, in a tight loop, plants links in staging folders,
swaps a user's folder for a link (to a canary folder next to ``lab_root``,
and to ``lab_root`` itself), or swaps ``personal_notebooks`` for such a link.
After the race the canary's tree, owners and modes, and ``lab_root``'s own
owner, mode and entries, must be as before. Each race is bounded in time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from labhub.lab import folder_task, folders

from ..conftest import lab_spawner_config
from ..support.hub import SpawnFailed

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(os.geteuid() != 0, reason="the races need root and a second uid"),
]

LAB_UID = 2100
#: The racer's own interpreter: the test's may sit in root's home, which uid 2100 cannot enter.
RACER_PYTHON = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin")

RACER = r"""
import ctypes, os, sys, time
race, personal, canary, stop_file, seconds, nice = sys.argv[1:7]
os.nice(int(nice))  # beside a real hub: race on idle CPU, do not slow the labs' start
lab_root = os.path.dirname(personal)
deadline = time.monotonic() + float(seconds)
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2

def exchange(a, b):
    # one syscall swaps a folder and a link, so the folder code meets each state often
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE):
        raise OSError(ctypes.get_errno(), "renameat2")

wins = {"planted": 0, "flipped": 0, "swapped": 0}

def attempt(fn, *args):
    try:
        fn(*args)
        return True
    except OSError:
        return False

def plant():
    for name in os.listdir(personal):
        if name.startswith(".creating-"):
            for demo in ("welcome.txt", "zz-last.txt"):
                link = os.path.join(personal, name, demo)
                target = os.path.join(canary, "planted-" + demo)
                wins["planted"] += attempt(os.symlink, target, link)

def flip():
    # a user's folder becomes, for a moment, a link outside lab_root or to lab_root itself
    for name in os.listdir(personal):
        path = os.path.join(personal, name)
        if name.startswith(".") or os.path.islink(path) or not os.path.isdir(path):
            continue
        attempt(os.chmod, path, 0o755)  # a wrong mode makes the folder code chmod
        for n, target in enumerate([os.path.join(canary, "dir"), ".."]):
            link = os.path.join(personal, f".lnk{n}-{name}")
            attempt(os.symlink, target, link)
            if attempt(exchange, path, link):
                wins["flipped"] += 1
                attempt(exchange, path, link)

def swap():
    # personal_notebooks becomes, for a moment, a link outside lab_root or to lab_root itself
    for n, target in enumerate([os.path.join(canary, "dir"), "."]):
        link = os.path.join(lab_root, f".pn-link{n}")
        attempt(os.symlink, target, link)
        if attempt(exchange, personal, link):
            wins["swapped"] += 1
            attempt(exchange, personal, link)

print("ready", flush=True)
steps = {"plant": [plant, flip], "links": [plant], "flip": [flip], "swap": [swap]}[race]
i = 0
while time.monotonic() < deadline and not os.path.exists(stop_file):
    i += 1
    for step in steps:
        try:
            step()
        except OSError:
            pass
print(i, wins, flush=True)
"""


@dataclasses.dataclass
class Lab:
    base: Path
    lab_root: Path
    personal: Path
    shared: Path
    canary: Path
    demos: Path


@pytest.fixture
def lab(request):
    """lab_root, a canary folder beside it and demos, under a folder uid 2100 may traverse."""
    base = Path(tempfile.mkdtemp(prefix="labhub-race-", dir="/tmp"))
    base.chmod(0o755)
    lab_root = base / "lab"
    lab_root.mkdir(mode=0o755)
    canary = base / "canary"
    (canary / "dir").mkdir(parents=True, mode=0o755)
    (canary / "dir" / "keep.txt").write_text("keep")
    (canary / "file.txt").write_text("keep")
    for path in (canary, canary / "dir"):
        path.chmod(0o755)
    demos = base / "demos"
    (demos / "intro").mkdir(parents=True)
    # a large first file keeps the copy going long enough for a racer to act
    (demos / "a-data.bin").write_bytes(os.urandom(1 << 20))
    (demos / "intro" / "step1.txt").write_text("first steps")
    (demos / "welcome.txt").write_text("hello")
    (demos / "zz-last.txt").write_text("bye")
    yield Lab(
        base,
        lab_root,
        lab_root / "personal_notebooks",
        lab_root / "shared_notebooks",
        canary,
        demos,
    )
    shutil.rmtree(base, ignore_errors=True)


def outside_state(lab: Lab) -> dict:
    """Everything the folder code must never touch: the canary tree and lab_root itself."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(lab.canary):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            state[os.path.relpath(path, lab.base)] = (
                stat.S_IFMT(st.st_mode),
                st.st_uid,
                st.st_gid,
                stat.S_IMODE(st.st_mode),
            )
    st = os.lstat(lab.lab_root)
    state["lab_root"] = (stat.S_IFMT(st.st_mode), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
    # the per-user package folder's root is labhub's own, made at the first spawn
    state["lab_root entries"] = sorted(
        n for n in os.listdir(lab.lab_root) if not n.startswith(".pn-") and n != "packages"
    )
    packages = lab.lab_root / "packages"
    assert not packages.is_symlink() and (packages.is_dir() or not packages.exists())
    return state


class Racer:
    """The lab-uid process, racing until ``stop()`` or its own deadline."""

    def __init__(self, lab: Lab, race: str, seconds: float, nice: int = 0):
        self.stop_file = lab.base / f"stop-{race}"
        self.proc = subprocess.Popen(
            [RACER_PYTHON, "-I", "-c", RACER, race, str(lab.personal), str(lab.canary)]
            + [str(self.stop_file), str(seconds), str(nice)],
            user=LAB_UID,
            group=LAB_UID,
            extra_groups=[],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> str:
        self.stop_file.touch()
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.stop_file.unlink()
        return out.strip()


def prepare_lab_root(lab: Lab, race: str) -> None:
    folders.ensure_lab_folders(str(lab.personal), str(lab.shared), LAB_UID, LAB_UID)
    if race == "swap":
        # the worst case: lab_root itself given to the lab uid (older `labhub init` did this)
        os.chown(lab.lab_root, LAB_UID, LAB_UID)


def make_folder_in_process(lab: Lab, user: str) -> None:
    folders.ensure_lab_folders(str(lab.personal), str(lab.shared), LAB_UID, LAB_UID)
    folders.ensure_personal_folder(str(lab.personal / user), LAB_UID, LAB_UID, str(lab.demos))


def make_folder_by_helper(lab: Lab, user: str) -> None:
    """The helper's own argv, run on the host as root (the container only adds the mounts)."""
    job = folder_task.FolderJob(
        str(lab.personal / user), LAB_UID, LAB_UID, str(lab.personal), str(lab.shared), "x"
    )
    argv = folder_task.helper_command(job)
    assert argv[8] == folder_task.DEMO_TARGET
    argv[8] = str(lab.demos)
    subprocess.run(argv, capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize(
    "make", [make_folder_in_process, make_folder_by_helper], ids=["hub", "helper"]
)
@pytest.mark.parametrize("race", ["links", "flip", "swap"])
def test_folder_code_never_follows_a_lab_uid_link(lab, race, make):
    prepare_lab_root(lab, race)
    if race == "flip":
        make(lab, "victim")
    before = outside_state(lab)
    racer = Racer(lab, race, seconds=60)
    runs, started = 0, time.monotonic()
    try:
        # at least 30 runs and 4 s of racing, at most 30 s
        while (runs < 30 or time.monotonic() - started < 4) and time.monotonic() - started < 30:
            user = "victim" if race == "flip" else f"u{runs}"
            with contextlib.suppress(folders.LabFolderError):  # refusing a link is right
                make(lab, user)
            runs += 1
            if race == "links":
                # lab_root is root's here, so personal_notebooks is not a link: keep the disk small
                shutil.rmtree(lab.personal / user, ignore_errors=True)
    finally:
        report = racer.stop()
    print(f"{race}/{make.__name__} ({folders.__file__}): {runs} runs; racer {report}")
    assert runs >= 20
    assert outside_state(lab) == before


def spawn_and_stop(hub, user: str) -> bool:
    try:
        hub.spawn(user, wait=60)
        ok = True
    except (SpawnFailed, TimeoutError):
        ok = False
    hub.stop_server(user)
    return ok


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("creation", ["hub", "task"])
@pytest.mark.parametrize("race", ["plant", "swap"])
def test_spawns_raced_by_a_lab_uid_process(hub_factory, lab_image, lab_prefix, lab, race, creation):
    """20 spawns through a real hub while the racer plants links (or swaps the parent)."""
    prepare_lab_root(lab, race)
    extra = f"""
c.LabDockerSpawner.folder_creation = {creation!r}
c.LabDockerSpawner.demo_notebooks_dir = {str(lab.demos)!r}
"""
    hub = hub_factory(lab_spawner_config(lab_image, lab.lab_root, lab_prefix, extra))
    before = outside_state(lab)
    # plant: ten new users (staging folders), then the same ten again (existing folders)
    users = [f"r{i % 10}" for i in range(20)] if race == "plant" else [f"s{i}" for i in range(20)]
    racer = Racer(lab, race, seconds=480, nice=19)
    started = time.monotonic()
    try:
        results = [spawn_and_stop(hub, user) for user in users]
    finally:
        report = racer.stop()
    print(
        f"{race}/{creation}: {len(results)} spawns, {sum(results)} ready, "
        f"{time.monotonic() - started:.0f} s; racer {report}"
    )
    assert len(results) >= 20
    assert outside_state(lab) == before
