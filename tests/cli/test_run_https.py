"""The README's run command: a lab over HTTPS with a generated certificate, on loopback."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time

import pytest
import requests
from jupyterhub.utils import random_port

from ..support.browser import Browser

pytestmark = pytest.mark.docker
USER = "newcomer" + os.urandom(3).hex()


@pytest.fixture
def running_lab(tmp_path, lab_image, docker_engine):
    port = random_port()
    data = tmp_path / "labhub-data"
    env = {**os.environ, "LABHUB_DUMMY_PASSWORD": "readme-pw"}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labhub.cli",
            "run",
            "--data",
            str(data),
            "--port",
            str(port),
            "--image",
            lab_image,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "stop with Ctrl-C" in line or proc.poll() is not None:
            break
    assert any("labhub is running at https://127.0.0.1:" in line for line in lines), "".join(lines)
    print(f"\nlabhub run: login page served after {time.monotonic() - t0:.1f} s")
    yield port, data, "".join(lines)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    assert proc.returncode == 0
    # labs outlive the hub by design (cleanup_servers=False): remove this test's
    # (named with this hub's identity, so found by the user label)
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=org.labhub.user={USER}"],
        capture_output=True,
        text=True,
    )
    for container in listed.stdout.split():
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def test_served_over_verified_tls_only(running_lab):
    port, data, output = running_lab
    cert = data / "ssl" / "labhub.crt"
    r = requests.get(f"https://127.0.0.1:{port}/hub/api", verify=str(cert), timeout=10)
    assert r.status_code == 200 and "version" in r.json()
    # without the certificate the client refuses: it is self-signed, not trusted by default
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{port}/hub/api", timeout=10)
    # plain HTTP on the same port is not served
    try:
        plain = requests.get(f"http://127.0.0.1:{port}/hub/api", timeout=10)
        assert plain.status_code >= 400 and "version" not in plain.text
    except requests.exceptions.ConnectionError:
        pass
    ctx = ssl.create_default_context(cafile=str(cert))
    import socket

    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert "readme-pw" in output  # the run command tells the person how to log in


def test_log_in_and_get_a_lab_over_https(running_lab):
    port, data, _ = running_lab
    cert = str(data / "ssl" / "labhub.crt")
    base = f"https://127.0.0.1:{port}"
    browser = Browser(base, cert)  # verifies every request against the generated certificate
    r = browser.login(USER, "readme-pw")
    assert r.status_code == 302
    s = browser.session
    t0 = time.monotonic()
    r = s.post(
        f"{base}/hub/api/users/{USER}/server",
        headers={"X-XSRFToken": s.cookies.get("_xsrf")},
        timeout=120,
    )
    assert r.status_code in (201, 202), r.text
    while time.monotonic() - t0 < 120:
        server = (
            s.get(f"{base}/hub/api/users/{USER}", timeout=10).json().get("servers") or {}
        ).get("")
        if server and server.get("ready"):
            break
        time.sleep(0.2)
    # a browser's first visit: the lab sends it through the hub's OAuth and back, all over HTTPS
    assert s.get(f"{base}/user/{USER}/lab", timeout=30).status_code == 200
    r = s.get(f"{base}/user/{USER}/api/contents/work", timeout=10)
    assert r.status_code == 200, r.text[:300]
    print(f"\nspawn over HTTPS until the contents API answered: {time.monotonic() - t0:.1f} s")
    names = {item["name"] for item in r.json()["content"]}
    assert "Welcome.ipynb" in names  # the demo notebooks reached the new user's folder
    assert (data / "lab" / "personal_notebooks" / USER / "Welcome.ipynb").stat().st_uid == 2100
    hub_xsrf = s.cookies.get("_xsrf", path="/hub/")
    r = s.delete(
        f"{base}/hub/api/users/{USER}/server", headers={"X-XSRFToken": hub_xsrf}, timeout=60
    )
    assert r.status_code in (202, 204), r.text
