"""A user's own Python packages, kept across containers: their folder, its mount, the environment.

Nothing here talks to a daemon or touches the disk. Each user gets one folder
on the lab storage, beside (never inside) their notebooks, mounted at
:data:`PACKAGES_MOUNT_PATH` in every container of that user and nobody else's.
It is Python's *user base* (``PYTHONUSERBASE``), and ``PIP_USER=1`` sends
``pip install``, ``%pip install`` and ``python -m pip install`` there, so a lab
uid installs without sudo. Python keys the user site by its own version
(``lib/python3.11/site-packages``): an image with another Python starts with an
empty site and never loads extensions built for a different interpreter.
"""

from __future__ import annotations

from typing import Any

from labhub.lab.mounts import bind_mount, personal_folder

#: Where a user's package folder appears inside the container.
PACKAGES_MOUNT_PATH = "/opt/labhub/packages"
#: Set in every lab whose user has a package folder, so notebooks can find it (and reset it).
PACKAGES_ENV = "LABHUB_PACKAGES"


def packages_folder(packages_root: str, username: str) -> str:
    """The host path of ``username``'s package folder: a direct child of ``packages_root``.

    Named like the personal notebook folder (:func:`labhub.lab.names.user_folder_name`).
    """
    return personal_folder(packages_root, username)


def packages_mount(folder: str, target: str = PACKAGES_MOUNT_PATH) -> dict[str, Any]:
    """The read-write bind mount of a user's package folder."""
    return bind_mount(folder, target)


def packages_environment(target: str = PACKAGES_MOUNT_PATH) -> dict[str, str]:
    """The lab environment that makes ``target`` the user's install location.

    ``PIP_USER`` makes pip install there even where the image's own site-packages
    is writable (docker-stacks images), so nothing a user installs is lost with the
    container; packages already in the image are not installed a second time.
    """
    return {
        "PYTHONUSERBASE": target,
        "PIP_USER": "1",
        PACKAGES_ENV: target,
    }


def user_site(target: str, python_version: str) -> str:
    """Where Python ``python_version`` ("3.11") finds the user's packages inside the lab."""
    return f"{target}/lib/python{python_version}/site-packages"
