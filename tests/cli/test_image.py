"""The offline images: what each flavour carries, a lean start, and Jupyter's event validation intact."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from labhub.cli.image import (
    DEFAULT_IMAGE,
    LEAN_START_REMOVALS,
    MINIMAL_IMAGE,
    SCIENCE_PACKAGES,
    build_offline_image,
    image_packages,
    is_minimal_tag,
)

STACK_MODULES = "numpy pandas scipy sklearn matplotlib seaborn statsmodels pyarrow sqlalchemy ipywidgets sweetviz"

#: Jupyter's own event validation, as the server uses it: a valid event passes, a bad one fails.
EVENTS_CHECK = textwrap.dedent(
    """
    import logging, jsonschema
    from jupyter_events import EventLogger
    from jupyter_server import DEFAULT_EVENTS_SCHEMA_PATH, JUPYTER_SERVER_EVENTS_URI

    logger = EventLogger()
    logger.register_event_schema(DEFAULT_EVENTS_SCHEMA_PATH / "contents_service" / "v1.yaml")
    seen = []
    class Keep(logging.Handler):
        def emit(self, record): seen.append(record.msg)
    logger.register_handler(Keep())
    schema = next(iter(logger.schemas.schema_ids))
    assert schema.startswith(JUPYTER_SERVER_EVENTS_URI), schema
    logger.emit(schema_id=schema, data={"action": "get", "path": "work/a.ipynb"})
    assert seen and seen[-1]["path"] == "work/a.ipynb", seen
    try:
        logger.emit(schema_id=schema, data={"action": "no-such-action", "path": "x"})
    except jsonschema.ValidationError:
        pass
    else:
        raise SystemExit("an invalid event was accepted")
    checker = jsonschema.FormatChecker()
    assert "uri" in checker.checkers and not checker.conforms("not a uri", "uri")
    print("events validated")
    """
)

#: Licences that would make the image GPL: checked in every installed distribution's metadata.
GPL_CHECK = textwrap.dedent(
    """
    from importlib.metadata import distributions
    bad = []
    for d in distributions():
        m = d.metadata
        short = m.get("License") or ""
        short = short if len(short) < 100 else ""  # a full licence text lists bundled runtimes
        text = " ".join([short, m.get("License-Expression") or ""]
                        + [c for c in m.get_all("Classifier") or [] if c.startswith("License")])
        if "GPL" in text.replace("LGPL", "").replace("Lesser General Public", ""):
            bad.append(m["Name"])
    print("gpl:", sorted(set(bad)))
    """
)


def run_in(image: str, code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "2100:2100", image,
         "python", *args, "-c", code],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_flavours():
    assert set(image_packages(minimal=True)) < set(image_packages())
    assert set(SCIENCE_PACKAGES) == set(image_packages()) - set(image_packages(minimal=True))
    assert any(p.startswith("ipykernel") for p in image_packages(minimal=True))
    assert is_minimal_tag(MINIMAL_IMAGE) and not is_minimal_tag(DEFAULT_IMAGE)
    assert "rfc3987-syntax" in LEAN_START_REMOVALS
    assert "rfc3987" not in LEAN_START_REMOVALS  # the GPL package is never installed instead


@pytest.mark.docker
def test_default_image_carries_the_stack_and_starts_lean(lab_image):
    imports = "; ".join(f"import {m}" for m in STACK_MODULES.split())
    result = run_in(lab_image, imports + "; print('stack ok')")
    assert result.returncode == 0 and "stack ok" in result.stdout, result.stderr[-2000:]

    # the grammar build that cost half a start is gone: the server imports without it
    gone = "import importlib.util as u; print([u.find_spec(m) for m in ('rfc3987_syntax', 'lark')])"
    result = run_in(lab_image, "import jupyterhub.singleuser, jupyter_server.serverapp; " + gone)
    assert result.returncode == 0 and "[None, None]" in result.stdout, result.stderr[-2000:]

    result = run_in(lab_image, EVENTS_CHECK)
    assert result.returncode == 0 and "events validated" in result.stdout, result.stderr[-2000:]


@pytest.mark.docker
def test_no_gpl_code_in_the_default_image(lab_image):
    result = run_in(lab_image, GPL_CHECK)
    assert result.returncode == 0, result.stderr
    assert "gpl: []" in result.stdout, result.stdout


@pytest.mark.docker
@pytest.mark.slow
def test_minimal_image_is_lean(docker_engine):
    tag = build_offline_image(MINIMAL_IMAGE, workdir="/var/tmp")  # cached by tag
    result = run_in(tag, "import ipykernel, jupyterlab; print('jupyter ok'); import numpy")
    assert "jupyter ok" in result.stdout and "No module named 'numpy'" in result.stderr
    result = run_in(tag, EVENTS_CHECK)
    assert result.returncode == 0 and "events validated" in result.stdout, result.stderr[-2000:]
