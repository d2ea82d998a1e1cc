"""Spawn benchmarks: the docker-run floor, single spawns and bursts, stock DockerSpawner vs LabDockerSpawner."""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import statistics
import subprocess
import time
from pathlib import Path

import requests
from jupyterhub.utils import random_port
from traitlets.config import Config

from labhub.folders import ensure_lab_folders, ensure_personal_folder
from tests.support.hub import HubProcess

# Stock DockerSpawner doing the same job as LabDockerSpawner: same image, uid, mounts, host
# networking. Host networking needs the few lines below; everything else is stock.
STOCK_SPAWNER = """
from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port


class StockHostDockerSpawner(DockerSpawner):
    async def start(self):
        self.port = random_port()
        self.ip = "127.0.0.1"
        return await super().start()

    async def get_ip_and_port(self):
        return "127.0.0.1", self.port


c.JupyterHub.spawner_class = StockHostDockerSpawner
c.StockHostDockerSpawner.use_internal_ip = True  # no port_bindings on the host network
c.StockHostDockerSpawner.network_name = "host"
c.StockHostDockerSpawner.image = {image!r}
c.StockHostDockerSpawner.pull_policy = "never"
c.StockHostDockerSpawner.remove = True
c.StockHostDockerSpawner.prefix = {prefix!r}
c.StockHostDockerSpawner.extra_create_kwargs = {{"user": "2100:2100", "working_dir": "/home/jovyan"}}
c.StockHostDockerSpawner.environment = {{"HOME": "/home/jovyan"}}
c.StockHostDockerSpawner.volumes = {{
    {personal!r} + "/{{username}}": "/home/jovyan/work",
    {shared!r}: "/home/jovyan/shared",
}}
"""

LAB_SPAWNER = """
c.JupyterHub.spawner_class = "labhub.LabDockerSpawner"
c.LabDockerSpawner.network_name = "host"
c.LabDockerSpawner.image = {image!r}
c.LabDockerSpawner.pull_policy = "never"
c.LabDockerSpawner.lab_root = {lab_root!r}
c.LabDockerSpawner.prefix = {prefix!r}
"""

HUB_COMMON = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.log_level = "INFO"
{limits}
"""


def hub_limits() -> str:
    """The spawn limits labhub.configure() sets, applied to both hubs so they compare fairly."""
    try:
        import labhub

        cfg = Config()
        labhub.configure(
            cfg,
            lab_root="/tmp/labhub-bench-probe",
            data_dir="/tmp/labhub-bench-probe/data",
            auth_mode="dummy",
            dummy_password="x",
        )
    except Exception as err:  # configure() missing or refusing: fall back to JupyterHub defaults
        return f"# labhub.configure() unavailable ({type(err).__name__}); JupyterHub default limits"
    lines = []
    for section, key in (
        ("JupyterHub", "concurrent_spawn_limit"),
        ("JupyterHub", "active_server_limit"),
        ("Spawner", "start_timeout"),
        ("Spawner", "http_timeout"),
        ("Spawner", "poll_interval"),
    ):
        if key in cfg.get(section, {}):
            lines.append(f"c.{section}.{key} = {cfg[section][key]!r}")
    return "\n".join(lines)


def start_hubs(workdir: Path, image: str) -> dict[str, HubProcess]:
    limits = hub_limits()
    hubs = {}
    lab_root = workdir / "lab"
    stock_root = workdir / "stock"
    ensure_lab_folders(
        str(stock_root / "personal_notebooks"), str(stock_root / "shared_notebooks"), 2100, 2100
    )
    hubs["stock"] = HubProcess(
        workdir / "hub-stock",
        HUB_COMMON.format(limits=limits)
        + STOCK_SPAWNER.format(
            image=image,
            prefix="bench-stock",
            personal=str(stock_root / "personal_notebooks"),
            shared=str(stock_root / "shared_notebooks"),
        ),
    )
    hubs["labhub"] = HubProcess(
        workdir / "hub-lab",
        HUB_COMMON.format(limits=limits)
        + LAB_SPAWNER.format(image=image, lab_root=str(lab_root), prefix="bench-lab"),
    )
    hubs["stock"].stock_personal_root = stock_root / "personal_notebooks"
    for hub in hubs.values():
        hub.start()
    return hubs


def prepare_stock_user(hub: HubProcess, name: str) -> None:
    """Stock DockerSpawner would let Docker make a root-owned folder; make it right first (untimed)."""
    ensure_personal_folder(str(hub.stock_personal_root / name), 2100, 2100)


def timed_spawn(hub: HubProcess, name: str, kind: str) -> float:
    if kind == "stock":
        prepare_stock_user(hub, name)
    hub.create_user(name)
    t0 = time.perf_counter()
    r = hub.api("POST", f"/users/{name}/server")
    if r.status_code not in (201, 202):
        raise RuntimeError(f"{kind} spawn of {name}: {r.status_code} {r.text[:200]}")
    deadline = t0 + 300
    while time.perf_counter() < deadline:
        server = (hub.api("GET", f"/users/{name}").json().get("servers") or {}).get("")
        if server is None:
            raise RuntimeError(f"{kind} spawn of {name} failed")
        if server.get("ready"):
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise TimeoutError(f"{kind} spawn of {name} not ready in 300 s")


def floor(image: str, runs: int, workdir: Path) -> list[float]:
    """`docker run` of the same image, same uid, mounts and host network, until /api answers."""
    times = []
    workdir.mkdir(parents=True, exist_ok=True)
    folder = workdir / "floor"
    ensure_personal_folder(str(folder), 2100, 2100)
    for i in range(runs):
        port = random_port()
        token = secrets.token_hex(8)
        name = f"bench-floor-{i}-{secrets.token_hex(2)}"
        t0 = time.perf_counter()
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--rm",
                "--name",
                name,
                "--network",
                "host",
                "--user",
                "2100:2100",
                "-e",
                "HOME=/home/jovyan",
                "-w",
                "/home/jovyan",
                "-v",
                f"{folder}:/home/jovyan/work",
                image,
                "jupyter",
                "lab",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                "--no-browser",
            ],
            check=True,
            capture_output=True,
        )
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/api", timeout=1)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.02)
        times.append(time.perf_counter() - t0)
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True)
    return times


def single_spawns(hubs: dict[str, HubProcess], runs: int) -> dict[str, list[float]]:
    """Interleaved single spawns: stock, labhub, stock, labhub, ... each stopped after it is ready."""
    results: dict[str, list[float]] = {kind: [] for kind in hubs}
    for i in range(runs):
        for kind, hub in hubs.items():
            name = f"single{i}"
            results[kind].append(timed_spawn(hub, name, kind))
            hub.stop_server(name, wait=120)
    return results


def hub_rss_mb(hub: HubProcess) -> float:
    with open(f"/proc/{hub.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def burst(hub: HubProcess, kind: str, n: int) -> dict:
    """n users request a server at the same moment; time until all are ready."""
    names = [f"burst{n}-{i}" for i in range(n)]
    for name in names:
        if kind == "stock":
            prepare_stock_user(hub, name)
        hub.create_user(name)
    failures = 0
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        posts = list(
            pool.map(lambda name: hub.api("POST", f"/users/{name}/server", timeout=300), names)
        )
    failures += sum(r.status_code not in (201, 202) for r in posts)
    pending = {name for name, r in zip(names, posts, strict=True) if r.status_code in (201, 202)}
    deadline = t0 + 600
    while pending and time.perf_counter() < deadline:
        users = hub.api("GET", "/users?state=active&limit=500", timeout=60).json()
        ready = set()
        for user in users:
            server = (user.get("servers") or {}).get("")
            if user["name"] in pending and server and server.get("ready"):
                ready.add(user["name"])
        pending -= ready
        # a server that vanished while pending has failed
        if pending:
            active = {u["name"] for u in users}
            gone = {name for name in pending if name not in active}
            failures += len(gone)
            pending -= gone
        time.sleep(0.2)
    all_ready = time.perf_counter() - t0
    failures += len(pending)
    rss = hub_rss_mb(hub)
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda name: hub.stop_server(name, wait=300), names))
    return {"n": n, "seconds_to_all_ready": all_ready, "failures": failures, "hub_rss_mb": rss}


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p95": p95, "n": len(ordered), "values": values}


def cleanup_containers() -> None:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "name=bench-"], capture_output=True, text=True
    ).stdout.split()
    if out:
        subprocess.run(["docker", "rm", "-f", *out], capture_output=True)


def run_spawn_benchmarks(image: str, workdir: Path, runs: int, bursts: list[int]) -> dict:
    os.makedirs(workdir, exist_ok=True)
    results: dict = {"floor": summary(floor(image, runs, workdir))}
    hubs = start_hubs(workdir, image)
    try:
        single = single_spawns(hubs, runs)
        results["single"] = {kind: summary(times) for kind, times in single.items()}
        results["burst"] = {kind: [] for kind in hubs}
        for n in bursts:
            for kind, hub in hubs.items():
                results["burst"][kind].append(burst(hub, kind, n))
                cleanup_containers()
        results["hub_limits"] = hub_limits()
    finally:
        for hub in hubs.values():
            hub.stop()
        cleanup_containers()
    return results
