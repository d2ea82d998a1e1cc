"""``%pip install`` then ``import`` in the same kernel, on every image, engine and the warm pool.

The finding: a user's package folder had no ``site-packages`` when their first kernel
started, so Python left it off ``sys.path`` and what ``%pip install`` put there imported
only after a restart; in docker-stacks labs ``sudo`` dropped ``PYTHONUSERBASE`` and installs
went to the throwaway HOME. Each case here starts a real hub, opens a kernel through the
proxy as JupyterLab does, installs a wheel the test built (no index needed) and imports it
in that kernel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labhub.lab.packages import PACKAGES_MOUNT_PATH
from labhub.paths import share_dir

from ..conftest import lab_spawner_config
from ..support.images import DOCKER_STACKS_ROOT_START, build_from, three_images
from ..support.kernels import Kernel, probe_wheel
from ..support.pools import pool_hub, wait_full

pytestmark = pytest.mark.docker

WORK = "/home/jovyan/work"
#: (where the lab runs, image, uid strategy, where the package folder appears in the lab)
CASES = {
    "docker-labhub": ("docker", "labhub", "direct", PACKAGES_MOUNT_PATH),
    "docker-plain-venv": ("docker", "plain-python", "direct", PACKAGES_MOUNT_PATH),
    "docker-stacks-sudo": ("docker", "docker-stacks-root", "docker-stacks", "/home/jovyan/.local"),
    "swarm-labhub": ("swarm", "labhub", "direct", PACKAGES_MOUNT_PATH),
    "pool-labhub": ("pool", "labhub", "direct", PACKAGES_MOUNT_PATH),
}


def put_wheel(lab_root, user: str, name: str) -> str:
    """A wheel of module ``name`` in ``user``'s work folder; its path inside the lab."""
    wheel = f"{name}-1.0-py3-none-any.whl"
    path = lab_root / "personal_notebooks" / user / wheel
    path.write_bytes(probe_wheel(name))
    os.chown(path, 2100, 2100)
    return f"{WORK}/{wheel}"


def pip_install(kernel: Kernel, target: str):
    return kernel.run(
        f"%pip install --no-index --no-deps --no-cache-dir --disable-pip-version-check {target}"
    )


@pytest.fixture
def started_lab(request, lab_image, hub_factory, lab_root, lab_prefix, docker_client):
    """A hub of the case's engine and image with alice's lab running; (hub, folder in the lab)."""
    engine, kind, strategy, target = CASES[request.param]
    lab_root.mkdir(exist_ok=True)
    if kind == "docker-stacks-root":
        image = build_from(
            lab_image,
            DOCKER_STACKS_ROOT_START,
            f"labhub-test/stacks-root:{lab_image.split(':')[-1]}",
        )
    else:
        image = three_images(lab_image)[kind]
    extra = f'c.LabDockerSpawner.uid_strategy = "{strategy}"\n'
    if engine == "pool":
        hub = pool_hub(hub_factory, image, lab_root, lab_prefix, 1)
        wait_full(docker_client, lab_prefix, 1)
    else:
        config = lab_spawner_config(image, lab_root, lab_prefix, extra)
        if engine == "swarm":
            request.getfixturevalue("swarm")
            config = config.replace("LabDockerSpawner", "LabSwarmSpawner")
        hub = hub_factory(config)
    hub.spawn("alice")
    return hub, target


@pytest.mark.parametrize("started_lab", list(CASES), indirect=True)
def test_pip_install_then_import_in_the_same_kernel(started_lab, lab_root):
    hub, target = started_lab
    wheel = put_wheel(lab_root, "alice", "labhub_probe")
    with Kernel(hub, "alice") as kernel:
        # the kernel started before anything was installed: the user site must be there already
        before = kernel.run("import labhub_probe")
        assert "ModuleNotFoundError" in before.error, before.text
        installed = pip_install(kernel, wheel)
        assert "Successfully installed labhub-probe-1.0" in installed.text, installed.text
        imported = kernel.run(
            "import labhub_probe; print(labhub_probe.VALUE, labhub_probe.__file__)"
        )
        assert not imported.error, imported.text
        value, path = imported.stdout.split()
        assert value == "42" and path.startswith(target + "/lib/python3."), imported.text
    site = lab_root / "packages" / "alice" / "lib" / "python3.11" / "site-packages"
    assert (site / "labhub_probe" / "__init__.py").is_file(), sorted(os.listdir(site.parent.parent))


def welcome_cells(*numbers: int) -> str:
    """The code of Welcome's cells ``numbers``, as a user runs them (the reset switched on)."""
    notebook = json.loads((Path(share_dir()) / "notebooks" / "Welcome.ipynb").read_text())
    code = "\n".join("".join(notebook["cells"][n]["source"]) for n in numbers)
    return code.replace("RESET = False", "RESET = True")


@pytest.mark.parametrize("started_lab", ["docker-labhub"], indirect=True)
def test_a_failed_install_says_so_and_the_documented_reset_empties_a_broken_folder(
    started_lab, lab_root
):
    hub, _ = started_lab
    site = lab_root / "packages" / "alice" / "lib" / "python3.11" / "site-packages"
    with Kernel(hub, "alice") as kernel:
        failed = kernel.run(
            "%pip install --no-index --disable-pip-version-check labhub-no-such-package"
        )
        wanted = "No matching distribution found for labhub-no-such-package"
        assert wanted in failed.text, failed.text
        # the folder is as usable as before: the next install imports in this kernel
        installed = pip_install(kernel, put_wheel(lab_root, "alice", "labhub_probe"))
        assert "Successfully installed" in installed.text, installed.text
        assert kernel.run("import labhub_probe").error == ""

        # a broken install (a half-written package) goes with Welcome's reset cell, one step
        broken = kernel.run(
            "import os, site; d = os.path.join(site.getusersitepackages(), 'labhub_broken'); "
            "os.makedirs(d); open(d + '/__init__.py', 'w').write('raise ImportError(1)')"
        )
        assert not broken.error and (site / "labhub_broken").is_dir(), broken.text
        reset = kernel.run(welcome_cells(2, 4, 6))
        assert "Your package folder is empty" in reset.stdout and not reset.error, reset.text
        assert os.listdir(site) == [], os.listdir(site)
        installed = pip_install(kernel, put_wheel(lab_root, "alice", "labhub_second"))
        assert "Successfully installed" in installed.text, installed.text
        imported = kernel.run("import labhub_second; print(labhub_second.VALUE)")
        assert imported.stdout.strip() == "42", imported.text
