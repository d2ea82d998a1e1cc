"""Remote kernels: a lab spawned by a real hub lists and runs kernels on a real Enterprise Gateway."""

from __future__ import annotations

import time

import pytest

from labhub.lab.gateway import gateway_environment

from ..conftest import lab_spawner_config
from ..support.gateway import GATEWAY_KERNEL, Gateway, run_code

pytestmark = pytest.mark.docker


def test_gateway_environment():
    env = gateway_environment(
        url="https://eg.lab:8888/",
        username="ann",
        auth_token="t",
        request_timeout=30,
        connect_timeout=5,
    )
    assert env == {
        "JUPYTER_GATEWAY_URL": "https://eg.lab:8888",
        "JUPYTER_GATEWAY_VALIDATE_CERT": "true",
        "KERNEL_USERNAME": "ann",
        "JUPYTER_GATEWAY_AUTH_TOKEN": "t",
        "JUPYTER_GATEWAY_REQUEST_TIMEOUT": "30",
        "JUPYTER_GATEWAY_CONNECT_TIMEOUT": "5",
    }
    assert gateway_environment(url="", username="ann") == {}


@pytest.fixture
def gateway(tmp_path):
    gw = Gateway(tmp_path / "gateway").start()
    yield gw
    gw.stop()


def gateway_lab(hub_factory, lab_image, lab_root, lab_prefix, url, token):
    extra = f"""
c.LabDockerSpawner.gateway_url = {url!r}
c.LabDockerSpawner.gateway_auth_token = {token!r}
c.LabDockerSpawner.gateway_connect_timeout = 3
c.LabDockerSpawner.gateway_request_timeout = 60
"""
    return hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))


def test_lab_runs_its_kernels_on_the_gateway(gateway, hub_factory, lab_image, lab_root, lab_prefix):
    hub = gateway_lab(hub_factory, lab_image, lab_root, lab_prefix, gateway.url, gateway.token)
    hub.spawn("ann")
    specs = hub.user_request("ann", "GET", "/api/kernelspecs").json()
    # the lab lists exactly what the gateway offers, including a kernel only the gateway has
    offered = (
        __import__("requests")
        .get(f"{gateway.url}/api/kernelspecs", headers=gateway.headers, timeout=10)
        .json()
    )
    assert (
        set(specs["kernelspecs"]) == set(offered["kernelspecs"])
        and GATEWAY_KERNEL in specs["kernelspecs"]
    )
    t0 = time.monotonic()
    r = hub.user_request("ann", "POST", "/api/kernels", json={"name": GATEWAY_KERNEL}, timeout=120)
    assert r.status_code == 201, r.text
    kernel_id = r.json()["id"]
    ws_url = f"ws://127.0.0.1:{hub.port}/user/ann/api/kernels/{kernel_id}/channels"
    out = run_code(
        ws_url,
        {"Authorization": f"token {hub.token}"},
        "import os\nprint(os.environ.get('KERNEL_USERNAME'), 6 * 7, os.getpid())",
    )
    first_result = time.monotonic() - t0
    user, answer, pid = out.split()
    print(
        f"\nremote kernel: request to first result {first_result:.2f} s; it printed {out.strip()!r}"
    )
    assert (user, answer) == ("ann", "42")
    # the kernel is a process of the gateway's host (its pid is in our pid namespace), not of the lab
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"ipykernel_launcher" in f.read()
    hub.user_request("ann", "DELETE", f"/api/kernels/{kernel_id}")


def test_lab_opens_when_the_gateway_is_down(hub_factory, lab_image, lab_root, lab_prefix):
    from jupyterhub.utils import random_port

    hub = gateway_lab(
        hub_factory, lab_image, lab_root, lab_prefix, f"http://127.0.0.1:{random_port()}", "x"
    )
    hub.spawn("ben")
    assert hub.user_request("ben", "GET", "/api/contents/work").status_code == 200
    t0 = time.monotonic()
    r = hub.user_request("ben", "GET", "/api/kernelspecs", timeout=60)
    seconds = time.monotonic() - t0
    print(f"\nkernelspecs with the gateway down: HTTP {r.status_code} after {seconds:.2f} s")
    assert r.status_code >= 500
    assert "Gateway" in r.text or "gateway" in r.text
    assert seconds < 15


def test_pyspark_kernel_through_the_gateway(tmp_path, hub_factory, lab_image, lab_root, lab_prefix):
    """A PySpark kernel on local[*], started through the lab, counts a small DataFrame on the gateway host."""
    from ..support.gateway import gateway_python

    spec = {
        "display_name": "PySpark (local, labhub test)",
        "language": "python",
        "argv": [gateway_python(), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "env": {
            "PYSPARK_SUBMIT_ARGS": "--master local[*] --driver-memory 512m pyspark-shell",
            # keep the driver on loopback: tests send no traffic to other addresses
            "SPARK_LOCAL_IP": "127.0.0.1",
        },
        "metadata": {
            "process_proxy": {
                "class_name": "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy"
            }
        },
    }
    gw = Gateway(tmp_path / "gateway", extra_kernels={"labhub-pyspark-local": spec}).start()
    try:
        hub = gateway_lab(hub_factory, lab_image, lab_root, lab_prefix, gw.url, gw.token)
        hub.spawn("cleo")
        t0 = time.monotonic()
        r = hub.user_request(
            "cleo", "POST", "/api/kernels", json={"name": "labhub-pyspark-local"}, timeout=120
        )
        assert r.status_code == 201, r.text
        ws_url = f"ws://127.0.0.1:{hub.port}/user/cleo/api/kernels/{r.json()['id']}/channels"
        code = (
            "from pyspark.sql import SparkSession\n"
            "spark = SparkSession.builder.appName('labhub-test').getOrCreate()\n"
            "df = spark.createDataFrame([(i, i % 3) for i in range(1000)], ['n', 'group'])\n"
            "print(df.count(), df.filter(df.group == 0).count(), spark.sparkContext.master)\n"
        )
        out = run_code(ws_url, {"Authorization": f"token {hub.token}"}, code, timeout=240)
        print(f"\nPySpark through the gateway: {out.strip()!r} after {time.monotonic() - t0:.1f} s")
        assert out.split()[:2] == ["1000", "334"]
        assert out.split()[2].startswith("local[")
    finally:
        gw.stop()


def test_shipped_kernelspecs_name_real_process_proxies():
    import json
    import subprocess
    from pathlib import Path

    from ..support.gateway import gateway_python

    specs = sorted((Path(__file__).parents[2] / "share/labhub/kernels").glob("*/kernel.json"))
    assert {p.parent.name for p in specs} == {
        "pyspark-standalone",
        "pyspark-yarn",
        "pyspark-kubernetes",
    }
    for path in specs:
        spec = json.loads(path.read_text())
        assert spec["language"] == "python" and spec["argv"] and spec["display_name"]
        module, _, name = spec["metadata"]["process_proxy"]["class_name"].rpartition(".")
        # the class is defined in the Enterprise Gateway the tests run (read, not imported:
        # the Kubernetes module needs a cluster to import)
        script = (
            "import importlib.util, sys; "
            f"src = open(importlib.util.find_spec({module!r}).origin).read(); "
            f"sys.exit(0 if 'class {name}(' in src else 1)"
        )
        check = subprocess.run([gateway_python(), "-c", script], capture_output=True, text=True)
        assert check.returncode == 0, (path, check.stderr[-500:])
