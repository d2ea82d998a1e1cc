"""Every example_config/*/jupyterhub_config.py loads as JupyterHub would load it, so none rots."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import PyFileConfigLoader

from labhub.cli.certs import make_self_signed
from labhub.hub.configure import OPTIONS

EXAMPLES = sorted((Path(__file__).parent.parent / "example_config").glob("*/jupyterhub_config.py"))


def test_examples_exist():
    names = {p.parent.name for p in EXAMPLES}
    assert {"dev", "ldap", "cifs", "oidc"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_example_loads(path, tmp_path, monkeypatch):
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    make_self_signed(tmp_path / "lab.crt", tmp_path / "lab.key", ["localhost"])
    monkeypatch.setenv("LABHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LABHUB_LAB_ROOT", str(tmp_path / "lab"))
    monkeypatch.setenv("LABHUB_SSL_CERT", str(tmp_path / "lab.crt"))
    monkeypatch.setenv("LABHUB_SSL_KEY", str(tmp_path / "lab.key"))
    monkeypatch.setenv("LABHUB_DUMMY_PASSWORD", "example")
    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    # the classes it names accept every setting it makes (traits validate on construction)
    spawner_path = config.JupyterHub.spawner_class
    module, _, name = spawner_path.rpartition(".")
    spawner_class = getattr(importlib.import_module(module), name)
    spawner = spawner_class(config=config, user=SimpleNamespace(name="example"))
    assert spawner.lab_uid > 0
    from labhub.auth import LabAuthenticator

    auth = LabAuthenticator(config=config)
    assert auth.mode in ("ldap", "dummy", "oidc")
