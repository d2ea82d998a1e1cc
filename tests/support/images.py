"""Lab images other than labhub's own, built FROM the offline image with no registry, cached by tag."""

from __future__ import annotations

import subprocess

import docker

#: A team image of the docker-stacks kind: user jovyan (uid 1000) owns a 0755 HOME, USER 1000.
DOCKER_STACKS_LIKE = """
FROM {base}
USER root
RUN rm -rf /home/jovyan && useradd -m -u 1000 -d /home/jovyan -s /bin/bash jovyan \\
    && chmod 0755 /home/jovyan
USER 1000
WORKDIR /home/jovyan
"""

#: A plain Python image: Jupyter in a venv, no /home at all, no user for any uid.
PLAIN_PYTHON = """
FROM {base}
USER root
RUN rm -rf /home/jovyan /home/*
WORKDIR /
"""


def build_from(base: str, dockerfile: str, tag: str) -> str:
    """Build ``tag`` from ``dockerfile`` (``{base}`` filled in) unless it exists; return the tag."""
    client = docker.from_env(timeout=600)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    text = dockerfile.format(base=base).encode()
    # the engine CLI builds with the host network: RUN steps here need no network at all
    result = subprocess.run(
        ["docker", "build", "--network", "none", "-t", tag, "-"],
        input=text,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building {tag} failed: {result.stderr.decode()[-2000:]}")
    return tag
