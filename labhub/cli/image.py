"""Build a single-user image with no image registry: Debian from its mirror, Jupyter from PyPI.

This is the recipe the test suite and ``labhub run`` use on a machine that can
reach package registries but no Docker registry. Two flavours: the default
image carries the scientific Python stack and an EDA tool; ``--minimal`` builds
the lean one with Jupyter and a kernel only. Both start lean: packages that cost
start-up time and that no Jupyter schema uses are removed (:data:`LEAN_START_REMOVALS`).
Production labs use the docker-stacks based ``Dockerfile.lab`` from ``labhub init``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import jupyterhub

from labhub.cli.lab_config import write_lab_config

log = logging.getLogger("labhub.cli.image")

#: What the image contains beyond Debian's minimal base.
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates", "tini")
#: The default image's Debian side: R with IRkernel and the tidyverse pieces a first analysis
#: needs, and the fonts the demo's plots ask for (sweetviz's style names Roboto; R's cairo
#: device needs one sans font), so no plot prints a ``findfont`` warning.
SCIENCE_DEBIAN_PACKAGES = (
    "r-cran-irkernel",
    "r-cran-ggplot2",
    "r-cran-dplyr",
    "r-cran-readr",
    "fonts-roboto-unhinted",
    "fonts-dejavu-core",
)
#: Where IRkernel's Debian package keeps its kernel spec, and where the image's Jupyter finds it.
IRKERNEL_SPEC = "usr/lib/R/site-library/IRkernel/kernelspec"
KERNELS_DIR = "opt/conda/share/jupyter/kernels"
#: The Jupyter side, in both flavours: the single-user server must speak the hub's API version.
PYTHON_PACKAGES = (
    f"jupyterhub=={jupyterhub.__version__}",
    "jupyter_server",
    "jupyterlab",
    "ipykernel",
)
#: The scientific stack of the default image, from wheels. sweetviz is the EDA tool: MIT,
#: maintained, light (ydata-profiling is deprecated upstream and pulls in numba).
SCIENCE_PACKAGES = (
    "numpy==2.4.6",
    "pandas==3.1.1",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "matplotlib==3.11.2",
    "seaborn==0.13.2",
    "statsmodels==0.15.0",
    "pyarrow",
    "SQLAlchemy",
    "ipywidgets",
    "sweetviz==2.3.3",
    "jupyter-collaboration",  # live editing of a lab shared with a teammate
    "jupyter-resource-usage",  # the status bar's memory and CPU against the lab's limit
)
#: Uninstalled after the build. jsonschema's format checkers (via jupyter_events) import
#: rfc3987_syntax, which builds some 35 Lark grammars at import: about half of a lab's start.
#: No Jupyter event schema uses the IRI formats it checks; ``uri`` keeps its MIT checker
#: (rfc3986-validator), and the GPL ``rfc3987`` package is never installed instead.
LEAN_START_REMOVALS = ("rfc3987-syntax", "lark")

#: Bump when the package lists above change: the tag is the build cache's key.
STACK_REVISION = "3"
#: The default image: Jupyter plus the scientific stack (``labhub build-image``, ``labhub run``).
DEFAULT_IMAGE = f"labhub/singleuser:{jupyterhub.__version__}-ds{STACK_REVISION}"
#: The lean image (``labhub build-image --minimal``): Jupyter and a kernel only.
MINIMAL_IMAGE = f"labhub/singleuser-minimal:{jupyterhub.__version__}-{STACK_REVISION}"

#: HOME inside the image; world-writable so any lab uid can run with it.
IMAGE_HOME = "/home/jovyan"


def image_packages(minimal: bool = False) -> tuple[str, ...]:
    """The Python packages pip installs into the image of that flavour."""
    return PYTHON_PACKAGES if minimal else PYTHON_PACKAGES + SCIENCE_PACKAGES


def is_minimal_tag(tag: str) -> bool:
    """True for tags of the lean flavour, so ``build_offline_image(MINIMAL_IMAGE)`` builds it lean."""
    return tag == MINIMAL_IMAGE or tag.split(":", 1)[0].endswith("-minimal")


class ImageBuildError(RuntimeError):
    """The offline image could not be built; the message says which step failed."""


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """Return the Debian mirror this machine's apt already uses (read at run time, never stored)."""
    deb822 = sources_dir / "sources.list.d" / "debian.sources"
    if deb822.exists():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split(":", 1)[1].strip().split()[0]
    classic = sources_dir / "sources.list"
    if classic.exists():
        for line in classic.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    raise ImageBuildError(
        "No Debian mirror found in /etc/apt; add one to /etc/apt/sources.list.d/debian.sources."
    )


def image_exists(tag: str, docker: str = "docker") -> bool:
    """True when the local engine already has ``tag``."""
    result = subprocess.run(
        [docker, "image", "inspect", tag], capture_output=True, text=True, check=False
    )
    return result.returncode == 0


def _run(cmd: list[str], step: str, **kwargs) -> None:
    log.info("image build: %s", step)
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ImageBuildError(f"Building the offline image failed at '{step}':\n{tail}")


def _install_r(rootfs: Path, env: dict[str, str]) -> None:
    """R, IRkernel and the fonts from Debian, then IRkernel's spec where the image's Jupyter looks.

    apt-get in the new root resolves R's virtual dependencies (``r-api-4.0``), which
    debootstrap's own resolver does not; its lists and archives are removed afterwards.
    """
    apt_env = {**env, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["chroot", str(rootfs), "apt-get", "update", "-qq"], "apt-get update", env=apt_env)
    _run(
        [
            "chroot",
            str(rootfs),
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            *SCIENCE_DEBIAN_PACKAGES,
        ],
        "apt-get install R and fonts",
        env=apt_env,
    )
    _run(["chroot", str(rootfs), "apt-get", "clean"], "apt-get clean", env=apt_env)
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    kernels = rootfs / KERNELS_DIR
    kernels.mkdir(parents=True, exist_ok=True)
    shutil.copytree(rootfs / IRKERNEL_SPEC, kernels / "ir", dirs_exist_ok=True)


def build_offline_image(
    tag: str = DEFAULT_IMAGE,
    *,
    minimal: bool | None = None,
    extra_python_packages: tuple[str, ...] = (),
    workdir: str | None = None,
    force: bool = False,
) -> str:
    """Build ``tag`` with debootstrap and ``docker import`` unless it exists; return the tag.

    ``minimal`` (default: guessed from the tag, see :func:`is_minimal_tag`) leaves out the
    scientific stack. Needs root, ``debootstrap`` and a running engine.
    """
    if not force and image_exists(tag):
        return tag
    if minimal is None:
        minimal = is_minimal_tag(tag)
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(
            "debootstrap is not installed; run 'apt-get install -y debootstrap' and try again."
        )
    if os.geteuid() != 0:
        raise ImageBuildError("Building the offline image needs root (debootstrap and chroot).")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="labhub-rootfs-", dir=workdir) as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(DEBIAN_PACKAGES),
                "bookworm",
                str(rootfs),
                mirror,
            ],
            "debootstrap",
        )
        for src in ("/etc/resolv.conf", "/etc/ssl/certs/ca-certificates.crt"):
            if os.path.exists(src):
                dest = rootfs / src.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
        # system site packages on: that also turns the user site on (PYTHONUSERBASE), which
        # a plain venv switches off; it is where a lab's own installs go (labhub.lab.packages).
        _run(
            [
                "chroot",
                str(rootfs),
                "python3",
                "-m",
                "venv",
                "--system-site-packages",
                "/opt/conda",
            ],
            "python venv",
        )
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_DEFAULT_TIMEOUT": "120",
            "HOME": "/root",
        }
        _run(
            [
                "chroot",
                str(rootfs),
                "/opt/conda/bin/pip",
                "install",
                "--no-cache-dir",
                "--prefer-binary",
                *image_packages(minimal),
                *extra_python_packages,
            ],
            "pip install jupyter" if minimal else "pip install jupyter and the scientific stack",
            env=env,
        )
        _run(
            ["chroot", str(rootfs), "/opt/conda/bin/pip", "uninstall", "-y", *LEAN_START_REMOVALS],
            "pip uninstall (lean start)",
            env=env,
        )
        if not minimal:
            _install_r(rootfs, env)
        write_lab_config(rootfs / "opt/conda")
        home = rootfs / IMAGE_HOME.lstrip("/")
        home.mkdir(parents=True, exist_ok=True)
        # Any lab uid must be able to write HOME (dotfiles, ~/.local) in the direct-uid strategy.
        os.chmod(home, 0o1777)
        # The image must not carry the build machine's resolver.
        (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        _run(
            [
                "docker",
                "import",
                "-c",
                "ENV PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "-c",
                f"ENV HOME={IMAGE_HOME}",
                "-c",
                f"WORKDIR {IMAGE_HOME}",
                "-c",
                'ENTRYPOINT ["/usr/bin/tini", "-g", "--"]',
                "-c",
                'CMD ["jupyterhub-singleuser"]',
                "-",
                tag,
            ],
            "docker import",
            stdin=tar.stdout,
        )
        tar.wait()
    return tag
