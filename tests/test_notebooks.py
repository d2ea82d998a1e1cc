"""Every demo notebook runs top to bottom, through its kernel, in a real lab on the default image."""

from __future__ import annotations

import os

import pytest

from labhub.paths import share_dir

from .support.labs import configured_hub, lab_container, lab_exec

DEMO_DIR = os.path.join(share_dir(), "notebooks")
DEMOS = sorted(name for name in os.listdir(DEMO_DIR) if name.endswith(".ipynb"))
#: Welcome installs what requirements.txt beside it names: a small package from the index.
REQUIREMENT = "cowsay"


def test_the_demos_are_there():
    assert {"Welcome.ipynb", "Sharing with the team.ipynb", "Exploring a dataset.ipynb"} <= set(
        DEMOS
    )


@pytest.mark.docker
def test_every_demo_notebook_runs_top_to_bottom(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    hub = configured_hub(hub_factory, lab_image, lab_root, lab_prefix)
    hub.spawn("nora")
    lab = lab_container(docker_client, lab_prefix, "nora")
    # Welcome's %pip cell installs from the requirements.txt beside it, when there is one
    code, out = lab_exec(lab, ["sh", "-c", f"echo {REQUIREMENT} > requirements.txt"])
    assert code == 0, out

    code, listing = lab_exec(lab, ["ls", "-1"])
    assert set(DEMOS) <= set(listing.splitlines()), listing
    failures = {}
    for name in DEMOS:
        # from the notebook's own folder, as the lab uid, through an ipykernel of the image
        code, out = lab_exec(lab, ["jupyter", "execute", "--timeout=600", name])
        if code != 0:
            failures[name] = out[-3000:]
    assert not failures, "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())

    code, out = lab_exec(lab, ["python", "-c", f"import {REQUIREMENT}"])
    assert code == 0, out
