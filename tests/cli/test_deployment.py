"""`labhub init --offline` as an admin runs it: compose build, up, log in, keep files, upgrade."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from jupyterhub.utils import random_port

from labhub.cli.deployment import build_wheel, labhub_checkout
from labhub.cli.image import DEFAULT_IMAGE, build_offline_image

from ..conftest import unavailable
from ..support.browser import Browser
from ..support.waiting import wait_until

pytestmark = pytest.mark.docker

HUB_IMAGE = "labhub-test-hub:deploy"  # kept by tag between runs: only changed layers rebuild
LAB_IMAGE = "labhub-test-lab:deploy"


def sh(cmd: list[str], cwd: Path, timeout: float = 600) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{(r.stdout + r.stderr)[-3000:]}"
    return r.stdout


def read_env(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


def set_env(path: Path, **values: str) -> None:
    """Change lines of .env in place, as an admin would."""
    text = path.read_text()
    for key, value in values.items():
        text, n = re.subn(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
        assert n == 1, key
    path.write_text(text)


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the host's TCP sockets listening on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def wait_for_hub(base: str, cafile: str, timeout: float = 120) -> None:
    wait_until(
        lambda: requests.get(f"{base}/hub/api", verify=cafile, timeout=2).status_code == 200,
        timeout,
        0.3,
        f"the hub at {base} answering",
        (requests.RequestException,),
    )


def bumped_wheel(dest: Path) -> tuple[Path, str]:
    """labhub's wheel from a copy of the checkout with a newer version number."""
    source = labhub_checkout()
    assert source is not None, "the deployment test runs from a checkout"
    copy = dest / "src"
    for name in ("labhub", "share"):
        shutil.copytree(source / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(source / name, copy / name)
    version_file = copy / "labhub" / "_version.py"
    old = re.search(r'"(.+)"', version_file.read_text()).group(1)
    new = f"{old}.post1"
    version_file.write_text(f'__version__ = "{new}"\n')
    return build_wheel(copy, dest / "wheel"), new


@pytest.fixture
def compose(docker_engine, lab_image):
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed (apt-get install -y docker-compose)")
    build_offline_image(DEFAULT_IMAGE, workdir="/var/tmp")  # the base of both images; cached
    return "docker-compose"


def test_init_offline_build_up_login_restart_upgrade(tmp_path, compose):
    t_start = time.monotonic()
    timings = {}
    user = "deploy" + os.urandom(3).hex()
    target = tmp_path / f"lhdeploy{os.urandom(3).hex()}"  # also the compose project's name

    r = subprocess.run(
        [
            *(sys.executable, "-m", "labhub.cli", "init", str(target), "--offline"),
            *("--image", LAB_IMAGE, "--hub-image", HUB_IMAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert f"next: cd {target} && {compose} build && {compose} up -d" in r.stdout
    env_file = target / ".env"
    env = read_env(env_file)
    assert env["LABHUB_IP"] == "127.0.0.1" and env["LABHUB_AUTH_MODE"] == "dummy"
    assert env["HUB_BASE_IMAGE"] == env["LAB_BASE_IMAGE"] == DEFAULT_IMAGE
    # this machine may run other hubs: the admin's way to move ports is .env
    port = random_port()
    set_env(
        env_file,
        LABHUB_PORT=str(port),
        HUB_API_PORT=str(random_port()),
        PROXY_API_PORT=str(random_port()),
    )
    password = env["LABHUB_DUMMY_PASSWORD"]
    cafile = str(target / "ssl" / "labhub.crt")
    base = f"https://127.0.0.1:{port}"
    personal = target / "lab" / "personal_notebooks" / user

    try:
        t0 = time.monotonic()
        sh([compose, "build"], target)
        timings["compose build"] = time.monotonic() - t0
        t0 = time.monotonic()
        sh([compose, "up", "-d"], target)
        wait_for_hub(base, cafile)
        timings["up until the hub answers"] = time.monotonic() - t0
        # the dummy login is served on loopback only
        assert listening_addresses(port) == {"0100007F"}

        browser = Browser(base, cafile)
        assert browser.login(user, "wrong password").status_code == 403
        assert browser.login(user, password).status_code == 302
        timings["first lab"] = browser.start_lab()
        image = sh(["docker", "ps", "--filter", f"name={user}", "--format", "{{.Image}}"], target)
        assert image.split() == [LAB_IMAGE]  # the lab runs the image compose built
        r = browser.put_text("work/kept.txt", "written before the restart\n")
        assert r.status_code in (200, 201), r.text[:300]
        st = (personal / "kept.txt").stat()
        assert (st.st_uid, st.st_gid) == (2100, 2100)

        # down and up: the hub forgets nothing, the running lab is found again
        sh([compose, "down"], target)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{base}/hub/api", verify=cafile, timeout=5)
        t0 = time.monotonic()
        sh([compose, "up", "-d"], target)
        wait_for_hub(base, cafile)
        timings["up again"] = time.monotonic() - t0
        browser = Browser(base, cafile)
        assert browser.login(user, password).status_code == 302
        browser.start_lab()
        assert browser.read_text("work/kept.txt") == "written before the restart\n"

        # the upgrade path of docs/admin-guide.md: a newer wheel, rebuild, up -d
        browser.stop_lab()
        wheel, version = bumped_wheel(tmp_path / "upgrade")
        r = subprocess.run(
            [sys.executable, "-m", "labhub.cli", "init", "--upgrade", "--wheel", wheel, target],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert [p.name for p in (target / "wheels").glob("*.whl")] == [wheel.name]
        t0 = time.monotonic()
        sh([compose, "build"], target)
        timings["rebuild for the upgrade"] = time.monotonic() - t0
        sh([compose, "up", "-d"], target)
        wait_for_hub(base, cafile)
        running = sh(
            [
                compose,
                "exec",
                "-T",
                "hub",
                "python3",
                "-c",
                "import labhub; print(labhub.__version__)",
            ],
            target,
        )
        assert running.strip() == version
        browser = Browser(base, cafile)
        assert browser.login(user, password).status_code == 302
        browser.start_lab()
        assert browser.read_text("work/kept.txt") == "written before the restart\n"
        assert (personal / "kept.txt").stat().st_uid == 2100
        browser.stop_lab()
    finally:
        subprocess.run([compose, "down"], cwd=target, capture_output=True, timeout=120)
        # labs outlive the hub by design (cleanup_servers=False): remove this test's
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"name={user}"], capture_output=True, text=True
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    timings["whole test"] = time.monotonic() - t_start
    print("\n" + "\n".join(f"{name}: {seconds:.1f} s" for name, seconds in timings.items()))
