"""Write docs/configuration-reference.md from the traits' help texts before each build.

Every configurable trait of labhub's classes carries a ``help=`` text written as
user documentation; this page lists them, so the reference never drifts from code.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

CLASSES = [
    ("labhub.docker_spawner", "LabDockerSpawner"),
    ("labhub.swarm_spawner", "LabSwarmSpawner"),
    ("labhub.auth", "LabAuthenticator"),
    ("labhub.gateway", "GatewaySettingsMixin"),
]


def _own_traits(cls) -> list:
    """Traits a labhub class defines itself (inherited dockerspawner/JupyterHub ones are linked)."""
    own = []
    for name, trait in sorted(cls.class_traits(config=True).items()):
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is not None and owner.__module__.startswith("labhub"):
            own.append((name, trait))
    return own


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the `help` text of every setting labhub adds. Settings inherited from",
        "DockerSpawner, SwarmSpawner, LDAPAuthenticator and JupyterHub keep working as documented there.",
        "",
    ]
    for module_name, class_name in CLASSES:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue
        lines += [f"## {class_name}", "", inspect.cleandoc(cls.__doc__ or ""), ""]
        for name, trait in _own_traits(cls):
            default = trait.default_value_repr()
            lines += [
                f"### `c.{class_name}.{name}`",
                "",
                f"*{type(trait).__name__}*, default `{default}`"
                if len(default) < 80
                else f"*{type(trait).__name__}*",
                "",
                inspect.cleandoc(trait.help or "(no help text)"),
                "",
            ]
    return "\n".join(lines) + "\n"


def write_reference(app) -> None:
    target = Path(app.srcdir) / "configuration-reference.md"
    text = render()
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def setup(app):
    app.connect("builder-inited", write_reference)
    return {"parallel_read_safe": True}
