"""Root in a lab reads nothing a user wrote, and a lab keeps no capability it does not need.

The finding: with ``uid_strategy = "docker-stacks"`` the container starts as root and the
image's start script runs its before-notebook hooks as root, one of them a Python. With
``PYTHONUSERBASE`` pointing at the user's package folder, that Python ran a ``.pth`` file
the user had written there: code as uid 0, a set-uid root shell left in the personal folder.
Here a real hub starts a user's lab on an image whose start script does what docker-stacks'
does (:data:`tests.support.images.DOCKER_STACKS_ROOT_START`), the user ``pip install``s a
package and writes a ``.pth`` into their package folder, and a second lab starts.
"""

from __future__ import annotations

import os
import stat

import pytest

from ..conftest import lab_spawner_config
from ..support.images import DOCKER_STACKS_ROOT_START, build_from
from ..support.kernels import probe_wheel
from ..support.labs import lab_container

pytestmark = [pytest.mark.docker, pytest.mark.security]

LAB_UID = 2100
WORK = "/home/jovyan/work"

#: Runs argv as the lab uid with the environment of the lab's single-user server: what its
#: kernels and terminals get (``docker exec`` alone has the container's, the root phase's, one).
AS_THE_SERVER = r"""
import os, subprocess, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read()
        owner = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        continue
    # the server itself, not tini, which names it too and runs as the lab uid in a direct lab
    if b"jupyterhub-singleuser" in argv and b"tini" not in argv.split(b"\0")[0] and owner == os.getuid():
        raw = open(f"/proc/{pid}/environ", "rb").read().decode()
        env = dict(v.split("=", 1) for v in raw.split("\0") if "=" in v)
        sys.exit(subprocess.run(sys.argv[1:], env=env, cwd="/tmp").returncode)
sys.exit("no single-user server of this uid")
"""

#: What a user writes into their package folder: every Python that loads the user's site runs
#: it. It leaves a marker in the container's /tmp, which any uid can write (root without
#: DAC_OVERRIDE could not write the 0700 personal folder: no proof there), and run by root it
#: tries to leave a set-uid root shell in the personal folder.
ROOT_PTH = (
    "import os, shutil; open('/tmp/pth-ran-as-%d' % os.getuid(), 'a').close(); "
    f"os.getuid() == 0 and (shutil.copy('/bin/sh', '{WORK}/rootsh'), "
    f"os.chmod('{WORK}/rootsh', 0o4755))\n"
)

WRITE_PTH = f"""
import os, site
folder = site.getusersitepackages()
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "labhub_probe_root.pth"), "w") as f:
    f.write({ROOT_PTH!r})
"""


def as_lab_uid(container, argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` in the lab as the lab uid, with its server's environment."""
    code, out = container.exec_run(
        ["python3", "-I", "-c", AS_THE_SERVER, *argv], user=f"{LAB_UID}:{LAB_UID}"
    )
    return code, out.decode(errors="replace")


def as_root(container, code: str) -> tuple[int, str]:
    """Run Python ``code`` as root in the lab: what the root phase of its start could do."""
    rc, out = container.exec_run(["python3", "-I", "-c", code], user="0")
    return rc, out.decode(errors="replace")


def markers_in(container) -> list[str]:
    """The .pth markers in the lab's /tmp: one per uid whose Python loaded the user's site."""
    code, out = container.exec_run(["ls", "/tmp"], user="0")
    assert code == 0, out
    return [name for name in out.decode().split() if name.startswith("pth-ran-as-")]


def capability_bounds(container) -> int:
    """The bounding set of the lab's first process, as a number (bit n is capability n)."""
    code, out = container.exec_run(["cat", "/proc/1/status"], user="0")
    assert code == 0, out
    line = next(x for x in out.decode().splitlines() if x.startswith("CapBnd:"))
    return int(line.split()[1], 16)


CAP_NET_RAW, CAP_MKNOD = 13, 27


@pytest.fixture(scope="module")
def root_start_image(lab_image) -> str:
    return build_from(
        lab_image,
        DOCKER_STACKS_ROOT_START,
        f"labhub-test/stacks-root:{lab_image.rsplit(':', 1)[-1]}",
    )


@pytest.fixture(params=["docker-stacks", "direct"])
def strategy_hub(request, root_start_image, lab_image, hub_factory, lab_root, lab_prefix):
    """A real hub per uid strategy: docker-stacks on the root-start image, direct on labhub's."""
    strategy = request.param
    image = root_start_image if strategy == "docker-stacks" else lab_image
    extra = f'c.LabDockerSpawner.uid_strategy = "{strategy}"\n'
    return strategy, hub_factory(lab_spawner_config(image, lab_root, lab_prefix, extra))


def test_a_pth_in_the_package_folder_never_runs_as_root_and_packages_still_work(
    strategy_hub, lab_root, lab_prefix, docker_client
):
    strategy, hub = strategy_hub
    work = lab_root / "personal_notebooks" / "alice"
    hub.spawn("alice")
    first = lab_container(docker_client, lab_prefix, "alice")
    wheel = work / "labhub_probe-1.0-py3-none-any.whl"
    wheel.write_bytes(probe_wheel())
    os.chmod(wheel, 0o644)
    code, out = as_lab_uid(
        first,
        ["python3", "-m", "pip", "install", "--no-index", "--no-deps", "--no-cache-dir",
         "--disable-pip-version-check", f"{WORK}/{wheel.name}"],
    )  # fmt: skip
    assert code == 0, out
    code, out = as_lab_uid(first, ["python3", "-c", WRITE_PTH])
    assert code == 0, out
    hub.stop_server("alice")

    hub.spawn("alice")
    second = lab_container(docker_client, lab_prefix, "alice")
    markers = set(markers_in(second))  # left by the new container's start, nothing else yet
    # the user's site is the server's: the .pth ran as the lab uid, the package imports
    assert f"pth-ran-as-{LAB_UID}" in markers, markers
    code, out = as_lab_uid(
        second, ["python3", "-c", "import labhub_probe; print(labhub_probe.VALUE)"]
    )
    assert (code, out.strip()) == (0, "42"), out
    # ...and no Python that root ran before the switch read it
    assert "pth-ran-as-0" not in markers, f"{strategy}: the user's .pth ran as root"
    assert not (work / "rootsh").exists()
    for path in work.iterdir():
        st = path.lstat()
        assert st.st_uid != 0 or not st.st_mode & (stat.S_ISUID | stat.S_ISGID), path
    hub.stop_server("alice")


def test_a_lab_cannot_make_devices_or_raw_sockets_even_as_root(
    strategy_hub, lab_root, lab_prefix, docker_client
):
    strategy, hub = strategy_hub
    hub.spawn("bob")
    lab = lab_container(docker_client, lab_prefix, "bob")
    bounds = capability_bounds(lab)
    assert not bounds & (1 << CAP_MKNOD | 1 << CAP_NET_RAW), hex(bounds)
    if strategy == "direct":
        assert bounds == 0, hex(bounds)  # it never was root: it keeps nothing
    # root in the lab (a start script's hook, docker exec -u 0) cannot use them either
    code, out = as_root(lab, "import os; os.mknod('/tmp/null2', 0o20666, os.makedev(1, 3))")
    assert code != 0 and "PermissionError" in out, out
    code, out = as_root(lab, "import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)")
    assert code != 0 and "PermissionError" in out, out
    # what the shared folder on the host holds: no device node from a lab
    shared = lab_root / "shared_notebooks"
    assert not [p for p in shared.rglob("*") if stat.S_ISCHR(p.lstat().st_mode)]
    hub.stop_server("bob")
