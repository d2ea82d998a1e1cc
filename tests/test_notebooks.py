"""Every demo notebook runs top to bottom, through its kernel, in a real lab on the default image, and prints no warning."""

from __future__ import annotations

import os

import pytest

from labhub.paths import share_dir

from .support.labs import configured_hub, lab_container, lab_exec

DEMO_DIR = os.path.join(share_dir(), "notebooks")
DEMOS = sorted(name for name in os.listdir(DEMO_DIR) if name.endswith(".ipynb"))
#: Welcome installs what requirements.txt beside it names: a small package from the index.
REQUIREMENT = "cowsay"

#: Prints every stderr block and error of the executed notebook named in argv[1]; run in the lab.
NOISE = r"""
import json, sys
for n, cell in enumerate(json.load(open(sys.argv[1]))["cells"]):
    for out in cell.get("outputs", []):
        if out.get("name") == "stderr" or out["output_type"] == "error":
            print(json.dumps([n, out.get("text") or out.get("evalue")]))
"""


def test_the_demos_are_there():
    assert {
        "Welcome.ipynb",
        "Sharing with the team.ipynb",
        "Exploring a dataset.ipynb",
        "Exploring a dataset in R.ipynb",
    } <= set(DEMOS)


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
        # from the notebook's own folder, as the lab uid, through the kernel the notebook names
        # (ipykernel or IRkernel); the executed copy goes to /tmp, the demo stays as it was
        executed = f"/tmp/{name}"
        code, out = lab_exec(
            lab,
            ["jupyter", "nbconvert", "--to", "notebook", "--execute",
             "--ExecutePreprocessor.timeout=600", "--output", executed, name],
        )  # fmt: skip
        if code != 0:
            failures[name] = out[-3000:]
            continue
        # a warning is a red block the user did not ask for (a missing font, a deprecation)
        code, noise = lab_exec(lab, ["python", "-c", NOISE, executed])
        if code != 0 or noise.strip():
            failures[name] = noise[-3000:]
    assert not failures, "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())

    code, out = lab_exec(lab, ["python", "-c", f"import {REQUIREMENT}"])
    assert code == 0, out
