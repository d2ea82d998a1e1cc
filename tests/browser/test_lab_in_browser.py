"""The lab as a person uses it: Chromium over HTTPS through the real proxy, one login per module.

The tests run in file order on one hub and one signed-in browser: sign in, the EDA demo,
an install, the R demo, sign out. Every test ends with no JavaScript error in the console and no
request to any host but this machine.
"""

from __future__ import annotations

import base64
import os
import time
from urllib.parse import quote

import pytest

from ..support.hubconfig import PASSWORD
from ..support.kernels import probe_wheel
from ..support.waiting import wait_until

pytestmark = pytest.mark.docker
USER = "ada" + os.urandom(3).hex()
EDA_DEMO = "Exploring a dataset.ipynb"
R_DEMO = "Exploring a dataset in R.ipynb"
PYTHON = "Python 3"  # the kernel's display name starts so
STDERR = "application/vnd.jupyter.stderr"  # JupyterLab renders errors with this type too
#: The package a lab installs: made here, so the install needs no index and no network.
PROBE, PROBE_VERSION = "labhub_browser_probe", "1.0"


def notebook(cells: list[str], kernel: dict | None = None) -> dict:
    """A valid nbformat 4.5 notebook (cell ids included) with one code cell per source."""
    kernel = kernel or {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {
        "type": "notebook",
        "content": {
            "cells": [
                {
                    "id": f"cell-{n}",
                    "cell_type": "code",
                    "source": s,
                    "metadata": {},
                    "outputs": [],
                    "execution_count": None,
                }
                for n, s in enumerate(cells)
            ],
            "metadata": {"kernelspec": kernel},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
    }


def put(hub, path: str, model: dict) -> None:
    r = hub.user_request(USER, "PUT", f"/api/contents/{quote(path)}", json=model)
    assert r.status_code in (200, 201), r.text[:300]


def lab_url(hub, path: str = "") -> str:
    """The lab's address; with ``path``, that document alone open (``reset``: no earlier tabs)."""
    return f"{hub.url}/user/{USER}/lab" + (f"/tree/{quote(path)}?reset" if path else "")


def assert_quiet(browser) -> None:
    """No JavaScript error logged and no request to another host since the last check."""
    errors, outside = browser.take_problems()
    assert not errors, "the browser's console logged errors:\n" + "\n".join(errors)
    assert not outside, "the lab called hosts other than the hub:\n" + "\n".join(outside)


def assert_no_popup(browser) -> None:
    toasts = browser.text_of(".Toastify__toast")
    assert not toasts, f"the lab shows a popup: {toasts}"


def problems(cells: list[dict]) -> list[str]:
    """Code cells with no output, or with an error or stderr block, each as one line."""
    found = []
    for n, cell in enumerate(cells, 1):
        if not cell["outputs"]:
            found.append(f"cell {n} has no output: {cell['source'][:80]!r}")
        for output in cell["outputs"]:
            if output["mime"] == STDERR:
                found.append(f"cell {n} printed to stderr or failed: {output['text'][:300]!r}")
    return found


@pytest.fixture(scope="module")
def lab(https_hub, chromium):
    """The browser, signed in through the hub's form and landed in JupyterLab."""
    clicked = chromium.log_in(https_hub.url, USER, PASSWORD)
    chromium.wait_for_lab()
    chromium.sign_in_seconds = time.monotonic() - clicked
    return chromium


def test_sign_in_lands_in_jupyterlab_with_work_and_shared(lab, https_hub):
    print(f"\n'Sign in' to JupyterLab's file browser: {lab.sign_in_seconds:.1f} s")
    assert lab.driver.current_url.startswith(f"{https_hub.url}/user/{USER}/lab")
    wait_until(lambda: {"work", "shared"} <= lab.listing(), 30, what="work and shared listed")
    # the resource indicator: the lab's memory in the status bar
    wait_until(lambda: "Mem:" in lab.find("#jp-main-statusbar").text, 30, what="Mem: shown")
    assert_no_popup(lab)
    assert_quiet(lab)


def test_eda_demo_runs_every_cell_without_error_or_stderr(lab, https_hub):
    lab.open_notebook(lab_url(https_hub, f"work/{EDA_DEMO}"), PYTHON)
    t0 = time.monotonic()
    cells = lab.run_all()
    print(f"\n{EDA_DEMO}: {len(cells)} code cells ran in {time.monotonic() - t0:.1f} s")
    assert len(cells) >= 5
    assert not problems(cells), "\n".join(problems(cells))
    assert any(o["mime"] == "image/png" for c in cells for o in c["outputs"]), "no plot drawn"
    assert_no_popup(lab)
    assert_quiet(lab)


def test_pip_install_then_import_in_the_same_kernel(lab, https_hub):
    wheel, data = f"{PROBE}-{PROBE_VERSION}-py3-none-any.whl", probe_wheel(PROBE, PROBE_VERSION)
    put(
        https_hub,
        f"work/{wheel}",
        {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()},
    )
    put(
        https_hub,
        "work/install.ipynb",
        notebook(
            [
                f"%pip install --no-index --no-deps ./{wheel}",
                f"import {PROBE}\nprint({PROBE}.VALUE)",
            ]
        ),
    )
    lab.open_notebook(lab_url(https_hub, "work/install.ipynb"), PYTHON)
    cells = lab.run_all()
    assert "Successfully installed" in cells[0]["outputs"][0]["text"], cells[0]
    assert not problems(cells), "\n".join(problems(cells))
    assert cells[1]["outputs"][0]["text"].strip() == "42", cells[1]
    assert_quiet(lab)


def test_the_r_demo_runs(lab, https_hub):
    specs = https_hub.user_request(USER, "GET", "/api/kernelspecs").json()["kernelspecs"]
    r_names = [s["spec"]["display_name"] for s in specs.values() if s["spec"]["language"] == "R"]
    assert r_names, f"the lab has no R kernel, only {sorted(specs)}"
    lab.open_notebook(lab_url(https_hub, f"work/{R_DEMO}"), r_names[0])
    t0 = time.monotonic()
    cells = lab.run_all()
    print(f"\n{R_DEMO}: {len(cells)} code cells ran in {time.monotonic() - t0:.1f} s")
    assert not problems(cells), "\n".join(problems(cells))
    assert any(o["mime"] == "image/png" for c in cells for o in c["outputs"]), "no plot drawn"
    assert_quiet(lab)


def test_log_out_and_the_lab_is_gone(lab, https_hub, docker_client):
    lab.driver.get(lab_url(https_hub))
    lab.wait_for_lab()
    assert_quiet(lab)
    lab.menu("File", "hub:logout")
    wait_until(lambda: "/hub/login" in lab.driver.current_url, 60, what="back at the login page")
    wait_until(
        lambda: https_hub.server_model(USER) is None, 60, what=f"{USER}'s server gone from the hub"
    )
    name = f"{https_hub.prefix}-{USER}"
    wait_until(
        lambda: not docker_client.api.containers(all=True, filters={"name": name}),
        60,
        what=f"{USER}'s container gone from the engine",
    )
    # the lab's address now asks for a login instead of serving a lab
    lab.driver.get(lab_url(https_hub))
    wait_until(lambda: "/hub/login" in lab.driver.current_url, 30, what="sent to the login page")
    errors, outside = lab.take_problems()
    # the closing lab page's last polls (metrics, sessions) meet a server that is stopping
    leaving = (f"/user/{USER}/", f"/hub/user/{USER}/")
    assert not [e for e in errors if not any(part in e.split(" ", 1)[0] for part in leaving)]
    assert not outside
