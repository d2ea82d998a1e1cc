"""Build a single-user image with no image registry: Debian from its mirror, Jupyter from PyPI.

This is the recipe the test suite and ``labhub run`` use on a machine that can
reach package registries but no Docker registry. Production labs use the
docker-stacks based ``Dockerfile.lab`` from ``labhub init`` instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import jupyterhub

log = logging.getLogger("labhub.image")

#: Tag of the offline image; the JupyterHub version is part of it because the
#: single-user server must speak the hub's API version.
DEFAULT_IMAGE = f"labhub/singleuser-offline:{jupyterhub.__version__}"

#: What the offline image contains beyond Debian's minimal base.
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates", "tini")
PYTHON_PACKAGES = (f"jupyterhub=={jupyterhub.__version__}", "jupyter_server", "jupyterlab")

#: HOME inside the image; world-writable so any lab uid can run with it.
IMAGE_HOME = "/home/jovyan"


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


def build_offline_image(
    tag: str = DEFAULT_IMAGE,
    *,
    extra_python_packages: tuple[str, ...] = (),
    workdir: str | None = None,
    force: bool = False,
) -> str:
    """Build ``tag`` with debootstrap and ``docker import`` unless it exists; return the tag.

    Takes about 90 s and 600 MB. Needs root, ``debootstrap`` and a running engine.
    """
    if not force and image_exists(tag):
        return tag
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
        _run(["chroot", str(rootfs), "python3", "-m", "venv", "/opt/conda"], "python venv")
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
                *PYTHON_PACKAGES,
                *extra_python_packages,
            ],
            "pip install jupyter",
            env=env,
        )
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
