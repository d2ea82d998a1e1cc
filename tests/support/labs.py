"""A hub started with configure()'s defaults, and commands run inside a user's lab as the lab uid."""

from __future__ import annotations

from .hubconfig import configured_config


def configured_hub(hub_factory, image: str, lab_root, prefix: str):
    """A real hub whose lab settings are configure()'s defaults (image, prefix and root aside)."""
    return hub_factory(configured_config(image, lab_root, prefix))


def lab_container(docker_client, prefix: str, user: str):
    """The one running lab container of ``user``."""
    found = docker_client.containers.list(filters={"name": f"{prefix}-{user}"})
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def lab_exec(container, cmd: list[str], workdir: str = "/home/jovyan/work") -> tuple[int, str]:
    """Run ``cmd`` in the lab as its own user (the lab uid), with the lab's environment."""
    code, out = container.exec_run(cmd, workdir=workdir, user=container.attrs["Config"]["User"])
    return code, out.decode(errors="replace")
