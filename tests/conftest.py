"""Fixtures that start the real parts: Docker engine, offline image, JupyterHub.

With CI=true a part that cannot be had fails the run; elsewhere the tests
that need it are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess

import docker
import pytest

from labhub.cli.docker_setup import EngineError, ensure_engine
from labhub.cli.image import DEFAULT_IMAGE, ImageBuildError, build_offline_image
from labhub.hub.options import OPTIONS

from .support.hub import HubProcess
from .support.hubconfig import lab_config

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere: tests that need a real part must run in CI."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_engine():
    try:
        engine = ensure_engine()
    except EngineError as err:
        unavailable(str(err))
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine):
    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def lab_image(docker_engine) -> str:
    tag = os.environ.get("LABHUB_TEST_IMAGE", DEFAULT_IMAGE)
    try:
        return build_offline_image(tag, workdir="/var/tmp")
    except ImageBuildError as err:
        unavailable(str(err))


@pytest.fixture
def lab_prefix(docker_client):
    """A container-name prefix unique to this test; its containers are removed afterwards."""
    prefix = "labt" + secrets.token_hex(3)
    yield prefix
    # the plain listing: containers.list() inspects each one, and a Swarm task's container
    # may go on its own between the listing and the inspection or the removal
    for container in docker_client.api.containers(all=True, filters={"name": prefix}):
        try:
            docker_client.api.remove_container(container["Id"], force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            # Swarm may be removing a finished task's container itself at this moment
            if "already in progress" not in str(err):
                raise
    for volume in docker_client.volumes.list(filters={"label": "org.labhub.managed"}):
        if prefix in volume.name:
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)


@pytest.fixture
def lab_root(tmp_path):
    root = tmp_path / "lab"
    return root


@pytest.fixture
def pool_root(lab_root):
    """The warm pool's folder; whatever a hub left mounted under lab_root is released at the end."""
    from labhub.pool import mounts as pool_mounts

    yield lab_root / ".warm-pool"
    for point in pool_mounts.mounts_under(str(lab_root)):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


@pytest.fixture
def hub_factory(tmp_path):
    """Start hubs with a given config; all are stopped at the end of the test."""
    hubs: list[HubProcess] = []

    def start(config: str, name: str = "hub", env: dict | None = None, start: bool = True):
        hub = HubProcess(tmp_path / name, config, env=env)
        hubs.append(hub)
        return hub.start() if start else hub

    yield start
    for hub in hubs:
        hub.stop()
        hub.reap()  # what a hub killed on purpose left running (its proxy, its culler)


@pytest.fixture(scope="module")
def swarm(docker_engine):
    """A one-node swarm on loopback for this module; left again only if this fixture made it."""
    from .support.swarm import ensure_swarm, leave_swarm, swarm_state

    made_here = ensure_swarm()
    assert swarm_state() == "active"
    yield
    if made_here:
        leave_swarm()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """A private slapd on loopback with the test directory (tests/support/slapd.py)."""
    from .support.slapd import slapd_binary, start_slapd

    if slapd_binary() is None:
        unavailable("slapd is not installed (apt-get install slapd ldap-utils)")
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


def lab_spawner_config(image: str, lab_root, prefix: str, extra: str = "") -> str:
    """Config for a hub that spawns LabDockerSpawner on host networking."""
    return lab_config(image, lab_root, prefix, extra=extra)


@pytest.fixture
def lab_hub(hub_factory, lab_image, lab_root, lab_prefix):
    """A running hub with LabDockerSpawner on host networking and a fresh lab_root."""
    return hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix))


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture
def base(tmp_path, monkeypatch):
    """configure()'s two folders, with no LABHUB_* variable of the developer's shell leaking in."""
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    return {"data_dir": str(tmp_path / "data"), "lab_root": str(tmp_path / "lab")}
