"""A user's own Python packages, kept across containers: their folder, its mount, the environment.

Nothing here talks to a daemon or touches the disk. Each user gets one folder
on the lab storage, beside (never inside) their notebooks, mounted at
:data:`PACKAGES_MOUNT_PATH` in every container of that user and nobody else's.
It is Python's *user base* (``PYTHONUSERBASE``), and ``PIP_USER=1`` sends
``pip install``, ``%pip install`` and ``python -m pip install`` there, so a lab
uid installs without sudo. Python keys the user site by its own version
(``lib/python3.11/site-packages``): an image with another Python starts with an
empty site and never loads extensions built for a different interpreter.

Python puts the user site on ``sys.path`` only if its folder exists when the
interpreter starts, so a kernel started before the first install would not see
what ``%pip install`` then puts there. The folder is therefore made with the user
sites of the Pythons labs run (:func:`user_site_folders`) before any lab starts.
"""

from __future__ import annotations

from typing import Any

from labhub.lab.mounts import bind_mount, personal_folder

#: Where a user's package folder appears inside the container.
PACKAGES_MOUNT_PATH = "/opt/labhub/packages"
#: Where it appears in a lab whose image's start script switches user with ``sudo``, which
#: drops ``PYTHONUSERBASE`` (docker-stacks' ``start.sh``): Python's default user base, ``~/.local``.
DEFAULT_USER_BASE = ".local"
#: The Pythons whose user site every package folder has from the start (``lib/python3.X/site-packages``).
#: A newer Python imports its first install after one kernel restart, as before.
USER_SITE_PYTHONS = tuple(f"3.{minor}" for minor in range(9, 16))
#: Set in every lab whose user has a package folder, so notebooks can find it (and reset it).
PACKAGES_ENV = "LABHUB_PACKAGES"


def packages_folder(packages_root: str, username: str) -> str:
    """The host path of ``username``'s package folder: a direct child of ``packages_root``.

    Named like the personal notebook folder (:func:`labhub.lab.names.user_folder_name`).
    """
    return personal_folder(packages_root, username)


def packages_target(uid_strategy: str, nb_user: str) -> str:
    """Where the package folder appears in a lab of ``uid_strategy``.

    A ``docker-stacks`` lab gets it at the lab user's ``~/.local`` (``start.sh`` makes HOME
    ``/home/$NB_USER``): the user base Python falls back to when the ``sudo`` that becomes
    the lab uid has dropped ``PYTHONUSERBASE``. Its root phase loads no user site
    (:data:`labhub.lab.specs.ROOT_PHASE_ENVIRONMENT`), wherever the folder is.
    """
    if uid_strategy == "docker-stacks":
        return f"/home/{nb_user}/{DEFAULT_USER_BASE}"
    return PACKAGES_MOUNT_PATH


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
    return f"{target}/{user_site_folder(python_version)}"


def user_site_folder(python_version: str) -> str:
    """Python ``python_version``'s user site, relative to the user base."""
    return f"lib/python{python_version}/site-packages"


def user_site_folders(pythons: tuple[str, ...] = USER_SITE_PYTHONS) -> tuple[str, ...]:
    """The user sites made in every package folder, so a kernel's first ``%pip install`` is importable at once."""
    return tuple(user_site_folder(version) for version in pythons)
