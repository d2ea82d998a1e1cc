"""Write docs/configuration-reference.md from the traits' help texts before each build.

Every configurable trait of labhub's classes carries a ``help=`` text written as
user documentation, and every configure() option is a row of
:data:`labhub.hub.options.OPTIONS`; this page lists both, so the reference never
drifts from code.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

CLASSES = [
    ("labhub.spawner.docker", "LabDockerSpawner"),
    ("labhub.spawner.swarm", "LabSwarmSpawner"),
    ("labhub.auth", "LabAuthenticator"),
    ("labhub.hub.sharing", "LabSharing"),
]


def _own_traits(cls) -> list:
    """Traits a labhub class defines itself (inherited dockerspawner/JupyterHub ones are linked)."""
    own = []
    for name, trait in sorted(cls.class_traits(config=True).items()):
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is not None and owner.__module__.startswith("labhub"):
            own.append((name, trait))
    return own


def _configure_options() -> list[str]:
    """The configure() options, from the one table in labhub.hub.options."""
    try:
        from labhub.hub.options import OPTIONS, SPAWNER_SECTION
    except ImportError:
        return []
    lines = [
        "## `labhub.configure()` options",
        "",
        "Each option is a keyword argument of `labhub.configure(c, ...)` and also reads its",
        "`LABHUB_*` environment variable (a keyword wins). A given option is written to the",
        "config; a default only fills in what the config does not set yet, so lines above the",
        "call stay and lines below it win. Lists are comma-separated in the environment",
        "(semicolon-separated when they hold DNs).",
        "",
        "| option | environment | default | allowed | sets | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        default = "" if option.default in ("", []) else f"`{option.default!r}`"
        allowed = ", ".join(f"`{c}`" for c in option.choices)
        sets = ", ".join(f"`{t.replace(SPAWNER_SECTION, '<spawner>')}`" for t in option.sets)
        meaning = option.help.replace("|", "\\|")
        lines.append(
            f"| `{option.name}` | `{option.env}` | {default} | {allowed} | {sets} | {meaning} |"
        )
    return [*lines, "", "`<spawner>` is LabDockerSpawner or LabSwarmSpawner, by `spawner`.", ""]


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the `help` text of every setting labhub adds. Settings inherited from",
        "DockerSpawner, SwarmSpawner, LDAPAuthenticator and JupyterHub keep working as documented there.",
        "",
        *_configure_options(),
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
