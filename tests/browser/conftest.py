"""The browser tests' parts: one HTTPS hub and one Chromium per module, a screenshot per test."""

from __future__ import annotations

import contextlib
import secrets

import docker
import pytest

from labhub.cli.certs import make_self_signed

from ..conftest import unavailable
from ..support.chromium import Chromium, chromium_available, start_chromium
from ..support.hub import HubProcess
from ..support.hubconfig import configured_config


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so its fixtures know whether it failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def browser_dir(tmp_path_factory, request):
    """The module's folder: the hub's config and log, and each test's screenshot beside them."""
    return tmp_path_factory.mktemp("browser-" + request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def https_hub(browser_dir, lab_image, docker_client):
    """A hub wired by configure() on its defaults, over HTTPS with a self-signed certificate.

    As ``labhub run`` makes it: labs on the isolated labs network, the proxy serving TLS.
    """
    cert, key = browser_dir / "lab.crt", browser_dir / "lab.key"
    make_self_signed(cert, key, ["127.0.0.1"])
    prefix = "labt" + secrets.token_hex(3)
    config = configured_config(
        lab_image, browser_dir / "lab", prefix, ssl_cert=str(cert), ssl_key=str(key)
    )
    hub = HubProcess(browser_dir, config)
    hub.scheme = "https"
    hub.verify = str(cert)
    hub.prefix = prefix
    try:
        yield hub.start()
    finally:
        hub.stop()
        hub.reap()
        for container in docker_client.api.containers(all=True, filters={"name": prefix}):
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.api.remove_container(container["Id"], force=True, v=True)


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium that reaches loopback only (tests/support/chromium.py)."""
    missing = chromium_available()
    if missing:
        unavailable(missing)
    browser = Chromium(start_chromium())
    yield browser
    browser.driver.quit()


@pytest.fixture(autouse=True)
def screenshot(request, chromium, browser_dir):
    """After each test, its screenshot and browser log beside the hub's log; a failure names them."""
    yield
    png, log = chromium.save(browser_dir / request.node.name)
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        report.sections.append(("browser", f"screenshot: {png}\nbrowser log: {log}"))
