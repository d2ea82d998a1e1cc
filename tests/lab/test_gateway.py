"""Remote kernels: a lab spawned by a real hub lists and runs kernels on a real Enterprise Gateway."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests

from labhub.lab.gateway import GatewayUsernameError, gateway_environment

from ..conftest import lab_spawner_config
from ..support.gateway import GATEWAY_KERNEL, Gateway, gateway_python, run_code
from ..support.waiting import wait_until

KERNELS = Path(__file__).parents[2] / "share/labhub/kernels"

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


@pytest.mark.security
def test_gateway_environment_sends_only_plain_usernames():
    for name in ("ann.lee", "ann@corp.example", "ann_2", "x" * 64):
        assert gateway_environment(url="http://eg", username=name)["KERNEL_USERNAME"] == name
    for name in ("ann --conf a=b", "-ann", "ann;id", "$(id)", "ann'", "ann\n", "", "x" * 65):
        with pytest.raises(GatewayUsernameError) as err:
            gateway_environment(url="http://eg", username=name)
        assert "cannot run kernels on the Spark gateway" in str(err.value)
    assert gateway_environment(url="", username="ann --conf a=b") == {}  # no gateway, no check


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


# --- the launcher argument: what a kernel request can put on spark-submit's command line --

#: A spark-submit that records its arguments, one file per kernel, and exits.
FAKE_SPARK_SUBMIT = """#!/bin/sh
exec {python} -c 'import json, os, sys
with open(os.path.join(sys.argv[1], os.environ["KERNEL_ID"]), "w") as f:
    json.dump(sys.argv[2:], f)' {records} "$@"
"""


def fake_spark_home(tmp_path: Path) -> tuple[Path, Path]:
    home, records = tmp_path / "spark", tmp_path / "submitted"
    (home / "bin").mkdir(parents=True)
    records.mkdir()
    submit = home / "bin" / "spark-submit"
    submit.write_text(FAKE_SPARK_SUBMIT.format(python=gateway_python(), records=records))
    submit.chmod(0o755)
    return home, records


def yarn_spec_for_test(gateway_dir: Path, name: str, spark_home: Path, proxy_user: str) -> dict:
    """The shipped YARN kernelspec as installed, with the local process proxy (no YARN here)."""
    spec = json.loads((KERNELS / "pyspark-yarn" / "kernel.json").read_text())
    spec["argv"][0] = str(gateway_dir / "share/jupyter/kernels" / name / "bin" / "run.sh")
    spec["env"].update(SPARK_HOME=str(spark_home), LABHUB_PROXY_USER=proxy_user)
    spec["metadata"]["process_proxy"]["class_name"] = (
        "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy"
    )
    return spec


@pytest.mark.security
def test_a_kernel_request_cannot_add_launcher_arguments(tmp_path):
    """Any holder of the gateway token names KERNEL_USERNAME; the shipped launcher gives it one argument or refuses it."""
    spark_home, records = fake_spark_home(tmp_path)
    gw_dir = tmp_path / "gateway"
    shipped = KERNELS / "pyspark-yarn"
    gw = Gateway(
        gw_dir,
        kernel_dirs={"yarn": shipped, "yarn-proxy": shipped},
        extra_kernels={
            "yarn": yarn_spec_for_test(gw_dir, "yarn", spark_home, "off"),
            "yarn-proxy": yarn_spec_for_test(gw_dir, "yarn-proxy", spark_home, "on"),
        },
        # a launcher that refused is seen dead at once, not restarted five times
        args=("--KernelRestarter.restart_limit=0", "--KernelRestarter.time_to_dead=0.5"),
    ).start()

    def submitted(kernel: str, username: str) -> list[str] | None:
        """spark-submit's arguments for a request as a lab (or its user) can send it; None if refused."""
        kernel_id = str(uuid.uuid4())
        r = requests.post(
            f"{gw.url}/api/kernels",
            headers=gw.headers,
            json={"name": kernel, "env": {"KERNEL_USERNAME": username, "KERNEL_ID": kernel_id}},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        assert r.json()["id"] == kernel_id
        record = records / kernel_id

        def launched_or_refused() -> bool:
            if record.exists():
                return True
            # the launcher exited without calling spark-submit: the gateway's kernel is gone
            k = requests.get(f"{gw.url}/api/kernels/{kernel_id}", headers=gw.headers, timeout=10)
            return k.status_code == 404

        wait_until(launched_or_refused, 30, 0.2, "spark-submit called or the kernel gone")
        requests.delete(f"{gw.url}/api/kernels/{kernel_id}", headers=gw.headers, timeout=30)
        return json.loads(record.read_text()) if record.exists() else None

    try:
        argv = submitted("yarn", "ann")
        print(f"\nspark-submit for ann: {argv}")
        assert argv[:6] == ["--master", "yarn", "--deploy-mode", "cluster", "--name", argv[5]]
        assert "--proxy-user" not in argv  # the shipped spec does not impersonate
        assert argv[6:8] == ["--conf", "spark.yarn.submit.waitAppCompletion=false"]
        assert argv[8].endswith("/scripts/launch_ipykernel.py")

        assert submitted("yarn-proxy", "ann.lee@corp")[6:8] == ["--proxy-user", "ann.lee@corp"]
        for forged in (
            "ann --proxy-user hdfs",
            "ann --conf spark.yarn.queue=root",
            "-hdfs",
            "ann\thdfs",
            "$(touch " + str(tmp_path / "ran") + ")",
        ):
            for kernel in ("yarn", "yarn-proxy"):
                argv = submitted(kernel, forged)
                print(f"KERNEL_USERNAME={forged!r} on {kernel}: spark-submit got {argv}")
                assert argv is None
        assert not (tmp_path / "ran").exists()
    finally:
        gw.stop()


def test_shipped_kernelspecs_take_no_request_variable_in_their_options():
    """kernel.json values are expanded from the request's KERNEL_* (jupyter_client) and then
    split into arguments: the variables belong in the launchers, quoted and checked."""
    for path in KERNELS.glob("*/kernel.json"):
        spec = json.loads(path.read_text())
        assert "--proxy-user" not in json.dumps(spec), path
        for key, value in spec["env"].items():
            assert "$" not in value, (path, key)
        launcher = Path(spec["argv"][0])
        assert launcher.parent.name == "bin" and (path.parent / "bin" / launcher.name).is_file()


def run_launcher(kernel: str, tmp_path: Path, **request_env: str) -> tuple[int, list[str] | None]:
    """The shipped launcher of ``kernel``, run by bash with its kernel.json environment and a
    request's KERNEL_* values; its exit code and what spark-submit (or the kernel) was given."""
    import os
    import subprocess

    spark_home, records = fake_spark_home(tmp_path / uuid.uuid4().hex)
    spec = json.loads((KERNELS / kernel / "kernel.json").read_text())
    kernel_id = request_env.setdefault("KERNEL_ID", str(uuid.uuid4()))
    env = {
        "PATH": os.environ["PATH"],
        **spec["env"],
        "SPARK_HOME": str(spark_home),
        # the standalone launcher starts the kernel itself: record its arguments the same way
        "PYSPARK_PYTHON": str(spark_home / "bin" / "spark-submit"),
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        **request_env,
    }
    argv = [str(KERNELS / kernel / "bin" / "run.sh"), *spec["argv"][1:]]
    done = subprocess.run(["bash", *argv], env=env, capture_output=True, text=True, timeout=30)
    record = records / kernel_id
    return done.returncode, json.loads(record.read_text()) if record.exists() else None


@pytest.mark.security
@pytest.mark.parametrize("kernel", ["pyspark-yarn", "pyspark-kubernetes", "pyspark-standalone"])
def test_every_shipped_launcher_refuses_what_would_split(kernel, tmp_path):
    request = {"KERNEL_USERNAME": "ann", "KERNEL_NAMESPACE": "labs"}
    code, argv = run_launcher(kernel, tmp_path, **request)
    assert code == 0 and argv, kernel
    assert "--proxy-user" not in argv
    if kernel == "pyspark-kubernetes":
        assert "spark.kubernetes.namespace=labs" in argv
        assert "spark.kubernetes.driver.container.image=lab/spark-kernel-py:3.5" in argv
    forged = [
        {"KERNEL_USERNAME": "ann --conf spark.x=1"},
        {"KERNEL_USERNAME": "-hdfs"},
        {"KERNEL_USERNAME": "ann'hdfs"},
        {"KERNEL_ID": "1 --conf spark.x=1"},
    ]
    if kernel == "pyspark-kubernetes":
        forged.append({"KERNEL_NAMESPACE": "kube-system --conf spark.x=1"})
    for values in forged:
        code, argv = run_launcher(kernel, tmp_path, **{**request, **values})
        print(f"{kernel} with {values}: exit {code}, arguments {argv}")
        assert (code, argv) == (64, None)
