"""The Jupyter configuration baked into labhub's images: a quiet, self-contained lab with its resource indicator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Front-end plugins a lab never loads: the "official Jupyter news" popup and its feed, and
#: the extension manager, which lists and installs extensions from the package index.
DISABLED_PLUGINS = (
    "@jupyterlab/apputils-extension:announcements",
    "@jupyterlab/extensionmanager-extension:plugin",
)

#: The server side: no news feed, no update check and an extension manager that lists what is
#: installed only (all three fetch from the internet), and jupyter-resource-usage reports CPU
#: too; its limits come from the lab's MEM_LIMIT and CPU_LIMIT (:func:`labhub.lab.build.lab_environment`).
SERVER_CONFIG: dict[str, Any] = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
    "ResourceUseDisplay": {"track_cpu_percent": True},
}


def page_config() -> dict[str, Any]:
    """JupyterLab's ``labconfig/page_config.json``: the plugins of :data:`DISABLED_PLUGINS` off."""
    return {"disabledExtensions": {plugin: True for plugin in DISABLED_PLUGINS}}


def write_lab_config(prefix: Path) -> None:
    """Write the server and page config under the environment ``prefix`` (``/opt/conda`` in the image).

    Files in ``{prefix}/etc/jupyter`` apply to every lab uid and cannot be changed by one.
    The server config is the main ``jupyter_server_config.json``: Jupyter reads only the
    extensions' switches from ``jupyter_server_config.d``, not other settings.
    """
    etc = prefix / "etc" / "jupyter"
    server = etc / "jupyter_server_config.json"
    etc.mkdir(parents=True, exist_ok=True)
    server.write_text(json.dumps(SERVER_CONFIG, indent=2) + "\n")
    page = etc / "labconfig" / "page_config.json"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(json.dumps(page_config(), indent=2) + "\n")
