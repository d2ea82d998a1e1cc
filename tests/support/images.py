"""Lab images other than labhub's own, built FROM the offline image with no registry, cached by tag."""

from __future__ import annotations

import base64
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

#: The start script of a docker-stacks-kind image, written here (not docker-stacks' file): root
#: gives HOME to NB_UID:NB_GID, sources every before-notebook.d hook as root, unsets what
#: JUPYTER_ENV_VARS_TO_UNSET names, then becomes NB_UID/NB_GID with the environment sudo
#: would leave and execs the command.
ROOT_START_SCRIPT = """#!/bin/bash
set -e
if [ "$(id -u)" != 0 ]; then
    exec "$@"
fi
if [ "${CHOWN_HOME}" = 1 ] || [ "${CHOWN_HOME}" = yes ]; then
    chown "${NB_UID}:${NB_GID}" "/home/${NB_USER:-jovyan}"
fi
for hook in /usr/local/bin/before-notebook.d/*; do
    case "${hook}" in
        *.sh) source "${hook}" ;;
        *) if [ -x "${hook}" ]; then "${hook}"; fi ;;
    esac
done
for name in ${JUPYTER_ENV_VARS_TO_UNSET//,/ }; do
    unset "${name}"
done
unset JUPYTER_ENV_VARS_TO_UNSET
# what docker-stacks' "sudo --preserve-env --set-home" does: sudo's env_delete drops these
# (PYTHONPATH is passed on by name), and HOME becomes the user's
unset PYTHONUSERBASE PYTHONHOME PYTHONINSPECT
export HOME="/home/${NB_USER:-jovyan}"
exec setpriv --reuid="${NB_UID}" --regid="${NB_GID}" --clear-groups "$@"
"""

#: A root hook like docker-stacks' conda one: a Python, run as root, prints shell code the hook evaluates.
ROOT_PYTHON_HOOK = """eval "$(python3 -c 'print("export LABHUB_TEST_HOOK=ran")')"
"""


def _written(path: str, text: str, mode: str) -> str:
    """A RUN line that writes ``text`` to ``path`` (a build from stdin has no files to COPY)."""
    encoded = base64.b64encode(text.encode()).decode()
    return f"RUN echo {encoded} | base64 -d > {path} && chmod {mode} {path}"


#: A docker-stacks-kind image that starts as root: the spawner's ``user = "0"`` runs
#: :data:`ROOT_START_SCRIPT` under tini, which runs :data:`ROOT_PYTHON_HOOK` as root first.
DOCKER_STACKS_ROOT_START = f"""
FROM {{base}}
USER root
RUN rm -rf /home/jovyan && useradd -m -u 1000 -d /home/jovyan -s /bin/bash jovyan \\
    && chmod 0755 /home/jovyan && mkdir -p /usr/local/bin/before-notebook.d
{_written("/usr/local/bin/start.sh", ROOT_START_SCRIPT, "0755")}
{_written("/usr/local/bin/before-notebook.d/10activate-env.sh", ROOT_PYTHON_HOOK, "0644")}
ENTRYPOINT ["tini", "-g", "--", "/usr/local/bin/start.sh"]
CMD ["jupyterhub-singleuser"]
USER 1000
WORKDIR /home/jovyan
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


def three_images(lab_image: str) -> dict[str, str]:
    """The images every engine must serve alike: labhub's, a docker-stacks-like one, a plain one.

    The two built ``FROM`` labhub's image are cached by tag, like it.
    """
    tag = lab_image.rsplit(":", 1)[-1]
    return {
        "labhub": lab_image,
        "docker-stacks-like": build_from(
            lab_image, DOCKER_STACKS_LIKE, f"labhub-test/stacks:{tag}"
        ),
        "plain-python": build_from(lab_image, PLAIN_PYTHON, f"labhub-test/plain:{tag}"),
    }
