"""The ACME server every certificate test orders from: one pebble on loopback for the session."""

from __future__ import annotations

import pytest

from ..support.pebble import Pebble


@pytest.fixture(scope="session")
def pebble(tmp_path_factory):
    server = Pebble(tmp_path_factory.mktemp("pebble")).start()
    yield server
    server.stop()


@pytest.fixture
def pebble_root(pebble, tmp_path):
    """pebble's root as a file: what a client trusting only that CA would load."""
    path = tmp_path / "pebble-root.pem"
    path.write_text(pebble.root_pem())
    return path
