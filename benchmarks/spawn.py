"""Spawn benchmarks: `docker run` floors, single spawns, bursts and a warm pool, stock vs labhub.

Four ways to start a lab, each timed from the spawn request to the hub saying ready:
stock DockerSpawner on the plain Jupyter image (what a team has today, and the
``x stock`` baseline), stock DockerSpawner on labhub's lean image (the same image
as labhub's rows, so the spawner alone differs), LabDockerSpawner cold, and
LabDockerSpawner warm, from a full pool. Floors: `docker run` of each image until
`/api` answers.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from jupyterhub.utils import random_port
from traitlets.config import Config

from benchmarks import warm
from benchmarks.progress import say
from labhub.lab.folders import ensure_lab_folders, ensure_personal_folder
from tests.support.hub import HubProcess

# Stock DockerSpawner doing the same job as LabDockerSpawner: same uid, mounts, host
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

# Logins are not timed (the API token drives every spawn); labhub's hubs run the
# LabAuthenticator as configure() sets it, whose start-up checks also start a warm pool.
STOCK_AUTH = """
c.JupyterHub.authenticator_class = "dummy"
"""
LAB_AUTH = """
c.JupyterHub.authenticator_class = "lab"
c.LabAuthenticator.mode = "dummy"
c.LabAuthenticator.dummy_password = {password!r}
"""

# labhub as shipped: configure()'s defaults, labs on the isolated labhub-labs network
# (a bridge with icc off; the hub listens on its gateway), not host networking.
LAB_DEFAULTS = """
import labhub

c.LabDockerSpawner.prefix = {prefix!r}
c.LabDockerSpawner.pull_policy = "never"
c.LabDockerSpawner.warm_pool_size = {pool}
labhub.configure(
    c,
    lab_root={lab_root!r},
    image={image!r},
    auth_mode="dummy",
    dummy_password={password!r},
)
c.JupyterHub.log_level = "INFO"
"""

HUB_COMMON = """
c.Authenticator.allow_all = True
c.JupyterHub.log_level = "INFO"
{limits}
"""

#: Every container this run starts has a name beginning with this; cleanup removes only those.
NAME_PREFIX = f"bench-{secrets.token_hex(2)}-"
#: The hubs, their image ("plain" or "lean") and their container prefix.
COLD_HUBS = {
    "stock_plain": ("stock", "plain", NAME_PREFIX + "stockp"),
    "stock_lean": ("stock", "lean", NAME_PREFIX + "stockl"),
    "lab_cold": ("labhub", "lean", NAME_PREFIX + "lab"),
    "lab_cold_default": ("labhub-defaults", "lean", NAME_PREFIX + "labd"),
}
WARM_PREFIX = NAME_PREFIX + "warm"
WARM_DEFAULT_PREFIX = NAME_PREFIX + "warmd"
#: Waiting containers of the configure()-defaults hub: single warm spawns only, no burst.
DEFAULTS_POOL = 2
#: Short names for progress lines (report.py has the long ones).
SHORT = {
    "stock_plain": "stock (plain image)",
    "stock_lean": "stock (labhub image)",
    "lab_cold": "labhub cold",
    "lab_warm": "labhub warm",
    "lab_cold_default": "labhub cold (defaults)",
    "lab_warm_default": "labhub warm (defaults)",
}


def hub_limits() -> str:
    """The spawn limits labhub.configure() sets, applied to every hub so they compare fairly."""
    try:
        import labhub

        cfg = Config()
        with tempfile.TemporaryDirectory(prefix="labhub-bench-probe-") as probe:
            labhub.configure(
                cfg,
                lab_root=probe,
                data_dir=f"{probe}/data",
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


def stock_hub(workdir: Path, image: str, prefix: str, limits: str) -> HubProcess:
    root = workdir / prefix
    personal, shared = root / "personal_notebooks", root / "shared_notebooks"
    ensure_lab_folders(str(personal), str(shared), 2100, 2100)
    hub = HubProcess(
        workdir / f"hub-{prefix}",
        HUB_COMMON.format(limits=limits)
        + STOCK_AUTH
        + STOCK_SPAWNER.format(
            image=image, prefix=prefix, personal=str(personal), shared=str(shared)
        ),
    )
    hub.stock_personal_root = personal
    return hub


def lab_hub(workdir: Path, image: str, prefix: str, limits: str, pool: int = 0) -> HubProcess:
    config = (
        HUB_COMMON.format(limits=limits)
        + LAB_AUTH.format(password=secrets.token_hex(8))
        + LAB_SPAWNER.format(image=image, lab_root=str(workdir / prefix), prefix=prefix)
    )
    if pool:
        config += f"c.LabDockerSpawner.warm_pool_size = {pool}\n"
    hub = HubProcess(workdir / f"hub-{prefix}", config)
    hub.stock_personal_root = None
    return hub


def defaults_hub(
    workdir: Path, image: str, prefix: str, limits: str = "", pool: int = 0
) -> HubProcess:
    """labhub on configure()'s defaults (limits included), labs on the isolated network."""
    config = "c.Authenticator.allow_all = True\n" + LAB_DEFAULTS.format(
        prefix=prefix,
        pool=pool,
        lab_root=str(workdir / prefix),
        image=image,
        password=secrets.token_hex(8),
    )
    hub = HubProcess(workdir / f"hub-{prefix}", config)
    hub.stock_personal_root = None
    return hub


def prepare_user(hub: HubProcess, name: str) -> None:
    """Stock DockerSpawner would let Docker make a root-owned folder; make it right first (untimed)."""
    if hub.stock_personal_root is not None:
        ensure_personal_folder(str(hub.stock_personal_root / name), 2100, 2100)
    hub.create_user(name)


def timed_spawn(hub: HubProcess, name: str, what: str) -> float:
    """Seconds from the spawn request until the hub reports ``name``'s server ready."""
    prepare_user(hub, name)
    t0 = time.perf_counter()
    r = hub.api("POST", f"/users/{name}/server")
    if r.status_code not in (201, 202):
        raise RuntimeError(
            f"{what} spawn of {name}: {r.status_code} {r.text[:200]}\n{hub.log_tail(30)}"
        )
    deadline = t0 + 300
    while time.perf_counter() < deadline:
        server = (hub.api("GET", f"/users/{name}").json().get("servers") or {}).get("")
        if server is None:
            raise RuntimeError(f"{what} spawn of {name} failed:\n{hub.log_tail(20)}")
        if server.get("ready"):
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise TimeoutError(f"{what} spawn of {name} not ready in 300 s")


def floor_once(image: str, folder: Path, tag: str) -> float:
    """`docker run` of ``image``, lab uid, a mount, host network, until JupyterLab's /api answers."""
    port = random_port()
    name = f"{NAME_PREFIX}floor-{tag}-{secrets.token_hex(3)}"
    t0 = time.perf_counter()
    try:
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
                f"--IdentityProvider.token={secrets.token_hex(8)}",
                "--no-browser",
            ],
            check=True,
            capture_output=True,
        )
        deadline = t0 + 120
        while time.perf_counter() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"{image}: /api did not answer within 120 s")
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True)


def floors(images: dict[str, str], runs: int, workdir: Path) -> dict[str, list[float]]:
    """Floors of every image, interleaved (plain, lean, plain, ...) so drift hits both alike."""
    folder = workdir / "floor"
    ensure_personal_folder(str(folder), 2100, 2100)
    times: dict[str, list[float]] = {kind: [] for kind in images}
    for i in range(runs):
        for kind, image in images.items():
            times[kind].append(floor_once(image, folder, kind))
            say("spawn", f"floor {kind} {i + 1}/{runs}: {times[kind][-1]:.2f} s")
    return times


def single_spawns(hubs: dict[str, HubProcess], runs: int) -> dict[str, list[float]]:
    """Interleaved single spawns, one hub after the other, each stopped once it is ready."""
    results: dict[str, list[float]] = {kind: [] for kind in hubs}
    for i in range(runs):
        for kind, hub in hubs.items():
            name = f"single{i}"
            results[kind].append(timed_spawn(hub, name, kind))
            say("spawn", f"{SHORT[kind]} {i + 1}/{runs}: {results[kind][-1]:.2f} s")
            hub.stop_server(name, wait=120)
    return results


def hub_rss_mb(hub: HubProcess) -> float:
    with open(f"/proc/{hub.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def burst(hub: HubProcess, kind: str, n: int) -> dict:
    """``n`` users request a server at the same moment; time until all are ready.

    Also records how many were ready when (for the plot), the hub's RSS with all
    of them running, and each lab container's memory a few seconds after the last
    one became ready.
    """
    what = f"{SHORT[kind]} {n}"
    names = [f"burst{n}-{i}" for i in range(n)]
    for name in names:
        prepare_user(hub, name)
    log_start = warm.log_offset(hub)
    failures = 0
    curve: list[tuple[float, int]] = [(0.0, 0)]
    ready_count, last_say = 0, time.perf_counter()
    pending = set(names)
    accepted: set[str] = set()  # their POST came back 201/202: gone from the hub means failed
    all_answered = False
    t0 = time.perf_counter()
    deadline = t0 + 600
    # the POSTs run beside the polling: a POST may wait for its spawn (slow_spawn_timeout)
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        posts = {
            pool.submit(hub.api, "POST", f"/users/{name}/server", timeout=300): name
            for name in names
        }
        while pending and time.perf_counter() < deadline:
            for future in [f for f in posts if f.done()]:
                name = posts.pop(future)
                try:
                    ok = future.result().status_code in (201, 202)
                except requests.RequestException:
                    ok = False
                if ok:
                    accepted.add(name)
                elif name in pending:
                    failures += 1
                    pending.discard(name)
            if not posts and not all_answered:
                all_answered = True
                say(
                    "burst",
                    f"{what}: {len(accepted)}/{n} requests accepted, the last answer after "
                    f"{time.perf_counter() - t0:.1f} s",
                )
            users = hub.api("GET", "/users?state=active&limit=500", timeout=60).json()
            active = {u["name"] for u in users}
            ready = {
                u["name"]
                for u in users
                if u["name"] in pending and ((u.get("servers") or {}).get("") or {}).get("ready")
            }
            pending -= ready
            # a server that vanished after its request was accepted has failed
            gone = {name for name in pending & accepted if name not in active}
            failures += len(gone)
            pending -= gone
            now = time.perf_counter()
            if ready:
                ready_count += len(ready)
                curve.append((round(now - t0, 2), ready_count))
            if now - last_say >= 3 and pending:
                say("burst", f"{what}: {ready_count}/{n} ready after {now - t0:.1f} s")
                last_say = now
            if pending:
                time.sleep(0.2)
    all_ready = time.perf_counter() - t0
    failures += len(pending)
    say(
        "burst",
        f"{what}: {ready_count}/{n} ready after {all_ready:.1f} s, {failures} failure(s)",
    )
    from_pool = warm.served_from_pool(hub, log_start, names) if kind == "lab_warm" else None
    if from_pool is not None:
        say("burst", f"{what}: {from_pool}/{n} labs came from the pool (the hub's log)")
    rss = hub_rss_mb(hub)
    time.sleep(5)
    labs = [
        name
        for name in subprocess.run(
            ["docker", "ps", "--filter", f"name={NAME_PREFIX}", "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if "-pool-" not in name and "_folder-" not in name
    ]
    lab_memory = sorted(warm.memory_mib(labs).values())
    t_stop = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda name: hub.stop_server(name, wait=300), names))
    say("burst", f"{what}: stopped {n} servers in {time.perf_counter() - t_stop:.1f} s")
    return {
        "kind": kind,
        "n": n,
        "seconds_to_all_ready": all_ready,
        "failures": failures,
        "from_pool": from_pool,
        "hub_rss_mb": rss,
        "ready_curve": curve,
        "lab_memory_mib": memory_summary(lab_memory),
    }


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p95": p95, "n": len(ordered), "values": values}


def memory_summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "max": max(values),
        "total": sum(values),
        "values": values,
    }


def cleanup_containers() -> None:
    """Remove every container this run started (labs, pool, floors, folder helpers)."""
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name={NAME_PREFIX}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if out:
        subprocess.run(["docker", "rm", "-f", *out], capture_output=True, check=False)


def release_mounts(workdir: Path) -> None:
    """Unmount what a hub left mounted under ``workdir`` (the warm pool's shared folder).

    Deepest first and lazily, so the run's temporary folder can be removed after it.
    """
    root = str(workdir.resolve()).rstrip("/") + "/"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point.startswith(root):
                points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        say("pool", f"unmounted {point}, left mounted by the hub")


def cold_phase(images: dict[str, str], workdir: Path, runs: int, burst_n: int) -> dict:
    """Stock on both images and LabDockerSpawner cold: single spawns, then a burst from each."""
    limits = hub_limits()
    hubs: dict[str, HubProcess] = {}
    results: dict = {"single": {}, "burst": [], "hub_rss_mb": {}}
    try:
        makers = {"stock": stock_hub, "labhub": lab_hub, "labhub-defaults": defaults_hub}
        for kind, (spawner, image, prefix) in COLD_HUBS.items():
            make = makers[spawner]
            hubs[kind] = make(workdir, images[image], prefix, limits).start()
            say("spawn", f"hub started: {SHORT[kind]}, {images[image]}")
        single = single_spawns(hubs, runs)
        results["single"] = {kind: summary(times) for kind, times in single.items()}
        for kind, hub in hubs.items():
            results["hub_rss_mb"][kind] = {"idle": hub_rss_mb(hub)}
        for kind in ("stock_plain", "stock_lean", "lab_cold"):
            results["burst"].append(burst(hubs[kind], kind, burst_n))
            results["hub_rss_mb"][kind]["after_burst"] = results["burst"][-1]["hub_rss_mb"]
            cleanup_containers()
    finally:
        for hub in hubs.values():
            hub.stop()
        cleanup_containers()
    return results


def warm_phase(
    image: str, workdir: Path, runs: int, pool_size: int, burst_n: int, results: dict
) -> None:
    """LabDockerSpawner with a warm pool: fill, idle memory, single warm spawns, a burst.

    Writes into ``results`` as it goes, so what was measured before a failure stays.
    """
    hub = lab_hub(workdir, image, WARM_PREFIX, hub_limits(), pool=pool_size)
    try:
        hub.start()
        say("pool", f"hub started: {SHORT['lab_warm']}, {image}, warm_pool_size = {pool_size}")
        if not warm.pool_started(hub, WARM_PREFIX, within=30):
            # a pool may also start at the first spawn instead of at hub start
            say("pool", "no pool container 30 s after the hub started: one spawn to start it")
            timed_spawn(hub, "primer", "lab_warm")
            hub.stop_server("primer", wait=120)
        fill, seen = warm.wait_full(hub, WARM_PREFIX, pool_size, 0, timeout=900)
        say("pool", f"full: {pool_size}/{pool_size} after {fill:.1f} s (seen in the {seen})")
        pool = results["pool"] = {"size": pool_size, "fill_seconds": fill, "full_seen_in": seen}
        time.sleep(5)  # idle, not still finishing their imports
        idle = sorted(warm.memory_mib(warm.free_pool_containers(WARM_PREFIX)).values())
        pool["idle_memory_mib"] = memory_summary(idle)
        rss = results["hub_rss_mb"]["lab_warm"] = {"idle": hub_rss_mb(hub)}
        if idle:
            say(
                "pool",
                f"idle memory of {len(idle)} pool containers: median "
                f"{statistics.median(idle):.0f} MiB, max {max(idle):.0f} MiB; "
                f"hub RSS {rss['idle']:.0f} MB",
            )
        times: list[float] = []
        pool["refill_waits"] = []
        since = 0
        for i in range(runs):
            waited, seen = warm.wait_full(hub, WARM_PREFIX, pool_size, since, timeout=300)
            if i:
                pool["refill_waits"].append(waited)
                say("pool", f"full again after waiting {waited:.1f} s (seen in the {seen})")
            since = warm.log_offset(hub)
            times.append(timed_spawn(hub, f"warm{i}", "lab_warm"))
            say("spawn", f"{SHORT['lab_warm']} {i + 1}/{runs}: {times[-1]:.2f} s")
            hub.stop_server(f"warm{i}", wait=120)
            results["single"]["lab_warm"] = summary(times)
        waited, seen = warm.wait_full(hub, WARM_PREFIX, pool_size, since, timeout=300)
        say("pool", f"full again after waiting {waited:.1f} s (seen in the {seen}); burst next")
        results["burst"].append(burst(hub, "lab_warm", burst_n))
        rss["after_burst"] = results["burst"][-1]["hub_rss_mb"]
    finally:
        hub.stop()
        cleanup_containers()
        release_mounts(workdir)


def warm_defaults_phase(image: str, workdir: Path, runs: int, results: dict) -> None:
    """Single warm spawns from a small pool on configure()'s defaults (isolated network)."""
    hub = defaults_hub(workdir, image, WARM_DEFAULT_PREFIX, pool=DEFAULTS_POOL)
    try:
        hub.start()
        say("pool", f"hub started: {SHORT['lab_warm_default']}, pool of {DEFAULTS_POOL}")
        times: list[float] = []
        since = 0
        for i in range(runs):
            waited, seen = warm.wait_full(hub, WARM_DEFAULT_PREFIX, DEFAULTS_POOL, since, 300)
            since = warm.log_offset(hub)
            times.append(timed_spawn(hub, f"warmd{i}", "lab_warm_default"))
            say("spawn", f"{SHORT['lab_warm_default']} {i + 1}/{runs}: {times[-1]:.2f} s")
            hub.stop_server(f"warmd{i}", wait=120)
            results["single"]["lab_warm_default"] = summary(times)
    finally:
        hub.stop()
        cleanup_containers()
        release_mounts(workdir)


def run_spawn_benchmarks(
    lean_image: str, plain_image: str, workdir: Path, runs: int, burst_n: int, pool_size: int
) -> dict:
    """Every spawn measurement; results as report.py reads them."""
    os.makedirs(workdir, exist_ok=True)
    images = {"plain": plain_image, "lean": lean_image}
    results: dict = {"images": images, "hub_limits": hub_limits()}
    try:
        results["floor"] = {kind: summary(t) for kind, t in floors(images, runs, workdir).items()}
    finally:
        cleanup_containers()
    cold = cold_phase(images, workdir, runs, burst_n)
    results.update(cold)
    if not warm.pool_supported():
        results["warm_skipped"] = (
            "this checkout's LabDockerSpawner has no warm_pool_size (the warm pool has not landed)"
        )
        say("pool", f"skipped: {results['warm_skipped']}")
        return results
    try:
        warm_phase(lean_image, workdir, runs, pool_size, burst_n, results)
        warm_defaults_phase(lean_image, workdir, runs, results)
    except Exception as err:  # the cold rows stand; the report says why warm ones are missing
        results["warm_error"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
        say("pool", f"failed: {type(err).__name__}: {err}")
    return results
