"""Where labhub's installed data (templates, demo notebooks, kernelspecs) lives."""

from __future__ import annotations

import sys
from pathlib import Path


def share_dir() -> Path:
    """The ``share/labhub`` folder: beside the package in a checkout, under the prefix once installed."""
    checkout = Path(__file__).resolve().parent.parent / "share" / "labhub"
    if checkout.is_dir():
        return checkout
    for prefix in (sys.prefix, sys.base_prefix, "/usr/local", "/usr"):
        installed = Path(prefix) / "share" / "labhub"
        if installed.is_dir():
            return installed
    raise FileNotFoundError("labhub's data folder share/labhub is missing; reinstall labhub.")


def hub_pages_dir() -> Path:
    """labhub's hub page templates (login.html, page.html, usage.html), each extending JupyterHub's."""
    return share_dir() / "pages"
