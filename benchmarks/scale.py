"""Scale on one host: N idle labs through one hub, its API with N running, a hub SIGKILL, the culler.

    python3 benchmarks/run.py scale --labs 200       # the full run (needs about 20 GiB free)
    python3 benchmarks/run.py scale --labs 10        # a smoke test, about 3 minutes

One hub on ``labhub.configure()``'s defaults (labhub's default image, the isolated
``labhub-labs`` network, dummy login) starts N labs through its REST API, a bounded
number at a time, and stops adding labs by itself when the host's MemAvailable falls
below ``--min-available`` GiB. With them running it measures each lab's cgroup memory,
the host's MemAvailable before and after, the hub's ``/hub/api`` latency and the proxy's
routes; then it SIGKILLs the hub, starts it again and times until every lab answers
through the proxy again (with a token the lab has to check with the new hub), and
finally restarts the hub with a short ``idle_timeout`` and times the idle culler
stopping all of them. Every container it starts is named with its own prefix and removed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import requests

from benchmarks.host import (
    GIB,
    cgroup_memory,
    cleanup,
    lab_containers,
    load_average,
    mem_available,
    network_exists,
    percentile,
    proxy_pid,
    proxy_routes,
    pythonpath,
    rss_mb,
    spread,
    started_at,
)
from benchmarks.progress import say
from tests.support.hub import HubProcess

#: Every container this run starts has a name beginning with this; cleanup removes only those.
NAME_PREFIX = f"scale-{secrets.token_hex(2)}"
#: Users are scale0000, scale0001, ...: sorted names, one lab each.
USER_FORMAT = "scale{:04d}"

#: configure()'s defaults but the image, the login and the prefix; the culler comes from
#: LABHUB_IDLE_TIMEOUT (0, off, until the culler phase). The loopback base of HubProcess
#: sets hub_ip and the test suite's spawn timeouts, which configure() would keep: they are
#: dropped so the hub listens on the labs' gateway with configure()'s timeouts, as shipped.
HUB_CONFIG = """
import labhub

c.JupyterHub.pop("hub_ip", None)
c.Spawner.pop("start_timeout", None)
c.Spawner.pop("http_timeout", None)
c.Authenticator.allow_all = True
c.LabDockerSpawner.prefix = {prefix!r}
c.LabDockerSpawner.pull_policy = "never"
labhub.configure(c, lab_root={lab_root!r}, image={image!r}, auth_mode="dummy", dummy_password={password!r})
c.JupyterHub.log_level = "INFO"
"""


# --- the phases -----------------------------------------------------------------------


def active_servers(hub: HubProcess) -> dict[str, bool]:
    """Users with a default server in the hub's view: name -> ready."""
    users = hub.api("GET", "/users?state=active&limit=10000", timeout=60).json()
    found = {}
    for user in users:
        server = (user.get("servers") or {}).get("")
        if server is not None:
            found[user["name"]] = bool(server.get("ready"))
    return found


def start_one(hub: HubProcess, name: str, timeout: float) -> tuple[str, bool, float, str]:
    """Ask for ``name``'s lab and wait until the hub says it is ready: (name, ok, seconds, why not)."""
    t0 = time.perf_counter()
    try:
        hub.create_user(name)
        r = hub.api("POST", f"/users/{name}/server", timeout=timeout)
        if r.status_code not in (201, 202):
            return name, False, time.perf_counter() - t0, f"{r.status_code} {r.text[:120]}"
        while time.perf_counter() - t0 < timeout:
            server = hub.server_model(name)
            if server is None:
                return name, False, time.perf_counter() - t0, "the server vanished while starting"
            if server.get("ready"):
                return name, True, time.perf_counter() - t0, ""
            time.sleep(0.5)
    except requests.RequestException as err:
        return name, False, time.perf_counter() - t0, f"{type(err).__name__}: {err}"
    return name, False, time.perf_counter() - t0, f"not ready within {timeout:.0f} s"


def spawn_labs(
    hub: HubProcess, target: int, concurrency: int, floor: int, budget: float | None = None
) -> dict:
    """Start up to ``target`` labs, ``concurrency`` at a time, until MemAvailable nears ``floor``.

    A new lab is asked for only while MemAvailable stays above ``floor`` plus what the labs
    still starting will take (the memory each finished lab took so far, 200 MiB until known),
    and only within ``budget`` seconds of the first request, if one is given.
    """
    before = mem_available()
    held: list[str] = []
    failed: dict[str, str] = {}
    times: list[float] = []
    curve: list[tuple[float, int, float]] = [(0.0, 0, before / GIB)]
    stopped_by_memory = stopped_by_time = False
    t0 = time.perf_counter()
    last_say = t0
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        running: set[concurrent.futures.Future] = set()
        next_index = 0

        def collect(done: set[concurrent.futures.Future]) -> None:
            for future in done:
                name, ok, seconds, why = future.result()
                if ok:
                    held.append(name)
                    times.append(seconds)
                else:
                    failed[name] = why
                    say("scale", f"{name} failed: {why}")
            curve.append((time.perf_counter() - t0, len(held), mem_available() / GIB))

        while True:
            per_lab = (before - mem_available()) / len(held) if len(held) >= 5 else 200 * 2**20
            per_lab = max(per_lab, 50 * 2**20)  # others on the host may have freed memory
            # the labs still starting will take their share too
            room = mem_available() - floor - len(running) * per_lab
            if next_index < target and budget is not None and time.perf_counter() - t0 > budget:
                if not stopped_by_time:
                    say("scale", f"{budget:.0f} s spent: no more labs")
                stopped_by_time = True
            if next_index < target and not stopped_by_memory and not stopped_by_time:
                if room >= per_lab and len(running) < concurrency:
                    name = USER_FORMAT.format(next_index)
                    next_index += 1
                    running.add(pool.submit(start_one, hub, name, 330))
                    continue
                if room < per_lab and not running:
                    stopped_by_memory = True
                    say(
                        "scale",
                        f"MemAvailable {mem_available() / GIB:.1f} GiB: no more labs "
                        f"(floor {floor / GIB:.1f} GiB, {per_lab / 2**20:.0f} MiB per lab)",
                    )
            if not running:
                break
            done, running = concurrent.futures.wait(
                running, timeout=2, return_when=concurrent.futures.FIRST_COMPLETED
            )
            running = set(running)
            if done:
                collect(done)
            now = time.perf_counter()
            if now - last_say >= 5:
                say(
                    "scale",
                    f"{len(held)}/{target} labs ready, {len(running)} starting, "
                    f"{len(failed)} failed, MemAvailable {mem_available() / GIB:.1f} GiB "
                    f"after {now - t0:.0f} s",
                )
                last_say = now
    seconds = time.perf_counter() - t0
    say("scale", f"{len(held)}/{target} labs ready after {seconds:.0f} s, {len(failed)} failed")
    return {
        "target": target,
        "held": len(held),
        "users": sorted(held),
        "failed": failed,
        "stopped_by_memory": stopped_by_memory,
        "stopped_by_time": stopped_by_time,
        "seconds": seconds,
        "spawn_seconds": spread(times),
        "curve": curve,
        "mem_available_before": before,
    }


def memory_phase(hub: HubProcess, prefix: str, held: int, before: int, settle: float) -> dict:
    """Each idle lab's cgroup memory and the host's MemAvailable, ``settle`` seconds after the last start."""
    time.sleep(settle)  # idle, not still finishing their imports
    containers = lab_containers(prefix)
    readings = {name: cgroup_memory(cid) for name, cid in containers.items()}
    unreadable = sorted(name for name, r in readings.items() if r is None)
    ok = [r for r in readings.values() if r is not None]
    after = mem_available()
    mib = 2**20
    result = {
        "containers": len(containers),
        "unreadable": unreadable,
        "usage_mib": spread([r["usage"] / mib for r in ok]),
        "working_set_mib": spread([r["working_set"] / mib for r in ok]),
        "anon_mib": spread([r["anon"] / mib for r in ok]),
        "mem_available_before_gib": before / GIB,
        "mem_available_after_gib": after / GIB,
        "host_per_lab_mib": (before - after) / mib / held if held else None,
        "hub_rss_mb": rss_mb(hub.proc.pid if hub.proc else None),
        "proxy_rss_mb": rss_mb(proxy_pid(hub)),
    }
    ws = result["working_set_mib"]
    if ws["n"]:
        say(
            "scale",
            f"memory of {ws['n']} idle labs: median {ws['median']:.0f} MiB (docker stats' figure), "
            f"host MemAvailable {before / GIB:.1f} -> {after / GIB:.1f} GiB, "
            f"{result['host_per_lab_mib']:.0f} MiB per lab",
        )
    return result


def api_latency(hub: HubProcess, users: list[str], per_user: int, lists: int) -> dict:
    """Sequential ``/hub/api`` requests with every lab running: ms per request, by kind."""
    kinds = {
        "root": ["/"] * per_user,
        "user": [f"/users/{users[i % len(users)]}" for i in range(per_user)] if users else [],
        "list": ["/users?state=active&limit=10000"] * lists,
    }
    result = {}
    for kind, paths in kinds.items():
        times, errors = [], 0
        for path in paths:
            t0 = time.perf_counter()
            try:
                ok = hub.api("GET", path, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            times.append((time.perf_counter() - t0) * 1000)
            errors += not ok
        result[kind] = {
            "requests": len(times),
            "errors": errors,
            "p50": percentile(times, 50),
            "p99": percentile(times, 99),
            "max": max(times) if times else float("nan"),
        }
        say(
            "scale",
            f"/hub/api{paths[0] if paths else ''} x{len(times)}: p50 {result[kind]['p50']:.1f} ms, "
            f"p99 {result[kind]['p99']:.1f} ms, {errors} error(s)",
        )
    return result


def lab_answers(hub: HubProcess, name: str) -> bool:
    """``name``'s lab answers an authenticated request through the proxy (its token checked by the hub)."""
    try:
        return hub.user_request(name, "GET", "/api/status", timeout=10).status_code == 200
    except requests.RequestException:
        return False


class OutageProbe:
    """Asks one lab's ``/api`` through the proxy every 0.1 s in a thread; records when it did not answer.

    ``/api`` needs no token, so it answers whenever the proxy routes to the lab, with
    or without a hub: the gaps are the proxy's, not the hub's.
    """

    def __init__(self, hub: HubProcess, user: str):
        self.hub, self.user = hub, user
        self.origin = time.perf_counter()
        self.gaps: list[tuple[float, float]] = []
        self._down_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> OutageProbe:
        self._thread.start()
        return self

    def mark(self, origin: float) -> None:
        """Count the gaps' times from ``origin`` (the hub's restart)."""
        self.origin = origin

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                # no token: a token would make the lab ask the (absent) hub about it
                r = requests.get(f"{self.hub.url}/user/{self.user}/api", timeout=2)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            now = time.perf_counter()
            if not ok and self._down_since is None:
                self._down_since = now
            elif ok and self._down_since is not None:
                self.gaps.append((self._down_since, now))
                self._down_since = None
            self._stop.wait(0.1)

    def stop(self) -> list[tuple[float, float]]:
        """Stop probing; the gaps as (from, to) seconds since the restart."""
        self._stop.set()
        self._thread.join(5)
        if self._down_since is not None:
            self.gaps.append((self._down_since, time.perf_counter()))
        return [(round(a - self.origin, 2), round(b - self.origin, 2)) for a, b in self.gaps]


def restart_phase(hub: HubProcess, prefix: str, users: list[str], timeout: float) -> dict:
    """SIGKILL the hub with every lab running, start it again, and time until each lab answers."""
    before = lab_containers(prefix)
    before_started = started_at(list(before.values()))
    outage = OutageProbe(hub, users[0]).start()
    hub.stop(signal.SIGKILL)
    say("scale", f"hub SIGKILLed with {len(users)} labs running; starting it again")
    t0 = time.perf_counter()
    outage.mark(t0)
    hub.start(wait=timeout)
    hub_up = time.perf_counter() - t0
    say("scale", f"hub answers again after {hub_up:.1f} s")
    served: dict[str, float] = {}
    hub_ready: float | None = None
    curve: list[tuple[float, int]] = [(0.0, 0)]
    last_say = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        while len(served) < len(users) and time.perf_counter() - t0 < timeout:
            waiting = [name for name in users if name not in served]
            for name, ok in zip(
                waiting, pool.map(lambda n: lab_answers(hub, n), waiting), strict=True
            ):
                if ok:
                    served[name] = time.perf_counter() - t0
            if hub_ready is None:
                with contextlib.suppress(requests.RequestException, ValueError):
                    ready = active_servers(hub)
                    if sum(ready.get(name, False) for name in users) == len(users):
                        hub_ready = time.perf_counter() - t0
            curve.append((time.perf_counter() - t0, len(served)))
            if time.perf_counter() - last_say >= 5:
                say(
                    "scale",
                    f"{len(served)}/{len(users)} labs answer again after {curve[-1][0]:.1f} s",
                )
                last_say = time.perf_counter()
            if len(served) < len(users):
                time.sleep(0.2)
    all_served = max(served.values()) if len(served) == len(users) else None
    gaps = outage.stop()
    after = lab_containers(prefix)
    after_started = started_at(list(after.values()))
    replaced = sorted(
        name
        for name, cid in before.items()
        if after.get(name) != cid or after_started.get(cid) != before_started.get(cid)
    )
    lost = sorted(set(users) - set(served))
    say(
        "scale",
        f"after the SIGKILL: {len(served)}/{len(users)} labs answer again, the last after "
        f"{all_served if all_served is not None else float('nan'):.1f} s; {len(lost)} lost, "
        f"{len(replaced)} container(s) replaced",
    )
    return {
        "labs": len(users),
        "hub_answers_s": hub_up,
        "hub_lists_all_ready_s": hub_ready,
        "all_served_s": all_served,
        "served": len(served),
        "lost": lost,
        "replaced_containers": replaced,
        "curve": curve,
        "routes": proxy_routes(hub),
        "probe_lab": users[0],
        "probe_gaps": gaps,
        "longest_gap_s": max((end - start for start, end in gaps), default=0.0),
    }


def hub_errors(hub: HubProcess, offset: int) -> list[str]:
    """Error lines the hub (and its managed culler) wrote after log ``offset``."""
    with open(hub.log_path, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return [
        line for line in text.splitlines() if re.match(r"\[(E|C) ", line) or "Traceback" in line
    ]


def cull_phase(hub: HubProcess, prefix: str, users: list[str], idle: int, timeout: float) -> dict:
    """Restart the hub with ``idle_timeout = idle`` and time its culler stopping every lab."""
    hub.stop()  # a clean stop: labs stay (cleanup_servers False), the proxy goes with the hub
    hub.extra_env["LABHUB_IDLE_TIMEOUT"] = str(idle)
    offset = hub.log_path.stat().st_size
    t0 = time.perf_counter()
    hub.start(wait=timeout)
    say(
        "scale",
        f"hub restarted with idle_timeout = {idle} s after {time.perf_counter() - t0:.1f} s",
    )
    first: float | None = None
    curve: list[tuple[float, int, int]] = []
    last_say = time.perf_counter()
    servers = containers = len(users)
    while time.perf_counter() - t0 < timeout:
        with contextlib.suppress(requests.RequestException, ValueError):
            servers = sum(1 for name in active_servers(hub) if name in set(users))
        containers = len(lab_containers(prefix))
        now = time.perf_counter() - t0
        curve.append((now, servers, containers))
        if first is None and (servers < len(users) or containers < len(users)):
            first = now
        if servers == 0 and containers == 0:
            break
        if time.perf_counter() - last_say >= 5:
            say(
                "scale",
                f"culler: {servers} servers, {containers} containers left after {now:.0f} s",
            )
            last_say = time.perf_counter()
        time.sleep(0.5)
    done = curve[-1][0] if servers == 0 and containers == 0 else None
    stopped = len(users) - max(servers, containers)
    working = curve[-1][0] - first if first is not None else 0.0
    errors = hub_errors(hub, offset)
    say(
        "scale",
        f"culler: {servers} servers and {containers} containers left, "
        f"first stop after {first if first is not None else float('nan'):.1f} s, "
        f"all gone after {done if done is not None else float('nan'):.1f} s; "
        f"{len(errors)} error line(s) in the hub's log",
    )
    return {
        "labs": len(users),
        "idle_timeout": idle,
        "first_stop_s": first,
        "all_gone_s": done,
        "culling_s": done - first if done is not None and first is not None else None,
        "stopped": stopped,
        "stopped_per_minute": 60 * stopped / working if working > 0 else None,
        "servers_left": servers,
        "containers_left": containers,
        "errors": errors[:20],
        "error_count": len(errors),
        "curve": curve,
    }


def run_scale(
    image: str,
    workdir: Path,
    labs: int,
    concurrency: int,
    min_available_gib: float,
    api_requests: int,
    idle_timeout: int,
    cull_wait: float = 600,
    spawn_budget: float | None = None,
    out: Path | None = None,
) -> dict:
    """Every scale measurement, written into one results dict as it goes.

    With ``out``, the results so far are written to ``out/scale.json`` after every
    phase, and the hub's log is copied to ``out/scale-hub.log`` at the end (``workdir``
    may be temporary), so a run stopped early keeps what it measured.
    """

    def checkpoint() -> None:
        if out is not None:
            write_json(results, out / "scale.json")

    from labhub.hub.options import DEFAULT_NETWORK

    results: dict = {
        "load_before": load_average(),
        "image": image,
        "labs": labs,
        "concurrency": concurrency,
        "min_available_gib": min_available_gib,
        "prefix": NAME_PREFIX,
    }
    network_was_there = network_exists(DEFAULT_NETWORK)
    workdir.mkdir(parents=True, exist_ok=True)
    hub = HubProcess(
        workdir / "hub",
        HUB_CONFIG.format(
            prefix=NAME_PREFIX,
            lab_root=str(workdir / "labs"),
            image=image,
            password=secrets.token_hex(8),
        ),
        # the hub imports labhub from this checkout, not from wherever it is installed
        env={"LABHUB_IDLE_TIMEOUT": "0", "PYTHONPATH": pythonpath()},
    )
    try:
        hub.start(wait=120)
        say("scale", f"hub started on configure()'s defaults, image {image}")
        spawn = spawn_labs(hub, labs, concurrency, int(min_available_gib * GIB), spawn_budget)
        results["spawn"] = spawn
        checkpoint()
        users = spawn["users"]
        if not users:
            raise RuntimeError(f"no lab started; the hub's log ends:\n{hub.log_tail(40)}")
        results["memory"] = memory_phase(
            hub, NAME_PREFIX, len(users), spawn["mem_available_before"], settle=20
        )
        results["routes"] = proxy_routes(hub)
        say(
            "scale",
            f"proxy routes: {results['routes']['all']} ({results['routes']['users']} to labs)",
        )
        results["api"] = api_latency(hub, users, api_requests, max(10, api_requests // 10))
        checkpoint()
        results["restart"] = restart_phase(hub, NAME_PREFIX, users, timeout=300)
        checkpoint()
        results["cull"] = cull_phase(hub, NAME_PREFIX, users, idle_timeout, timeout=cull_wait)
        results["load_after"] = load_average()
        checkpoint()
    finally:
        hub.stop()
        removed = cleanup(NAME_PREFIX)
        if removed:
            say("scale", f"removed {removed} container(s) left by the run")
        if not network_was_there and network_exists(DEFAULT_NETWORK):
            subprocess.run(["docker", "network", "rm", DEFAULT_NETWORK], capture_output=True)
        if out is not None and hub.log_path.exists():
            shutil.copyfile(hub.log_path, out / "scale-hub.log")
    return results


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    """``run.py scale``: measure, print the table, write scale.json, scale.md and scale.png."""
    import argparse
    import tempfile

    from benchmarks.scale_report import plot, splice, table
    from labhub.cli.docker_setup import ensure_engine
    from labhub.cli.image import DEFAULT_IMAGE, build_offline_image

    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(
        prog="run.py scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--labs", type=int, default=200, help="idle labs to start (default 200)")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="labs starting at once (default 16)"
    )
    parser.add_argument(
        "--min-available",
        type=float,
        default=3.0,
        help="GiB of MemAvailable below which no more labs are started (default 3)",
    )
    parser.add_argument(
        "--api-requests", type=int, default=300, help="/hub/api requests of each kind (default 300)"
    )
    parser.add_argument(
        "--idle-timeout", type=int, default=30, help="the culler's idle_timeout (default 30 s)"
    )
    parser.add_argument(
        "--cull-wait",
        type=float,
        default=600,
        help="seconds to wait for the culler to stop every lab (default 600)",
    )
    parser.add_argument(
        "--spawn-budget",
        type=float,
        help="seconds after which no more labs are asked for (default: no limit)",
    )
    parser.add_argument("--out", default=str(root / "benchmarks" / "out"), help="output folder")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also write benchmarks/scale.json and benchmarks/scale.png",
    )
    args = parser.parse_args(argv)
    if args.labs < 1 or args.concurrency < 1:
        parser.error("--labs and --concurrency must be 1 or more")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = ensure_engine()
    # a run stopped with SIGTERM still removes what it started (the finally blocks run)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    try:
        say("image", f"labhub image {DEFAULT_IMAGE} (built if missing)")
        image = build_offline_image(DEFAULT_IMAGE, workdir="/var/tmp")
        with tempfile.TemporaryDirectory(prefix="labhub-scale-") as tmp:
            results = run_scale(
                image,
                Path(tmp),
                args.labs,
                args.concurrency,
                args.min_available,
                args.api_requests,
                args.idle_timeout,
                cull_wait=args.cull_wait,
                spawn_budget=args.spawn_budget,
                out=out,
            )
    finally:
        engine.stop()
    from benchmarks.run import machine

    results["machine"] = machine()
    results["started"] = started
    results["seconds"] = round(time.monotonic() - t0, 1)
    text = table(results)
    print(text)
    print(f"total: {results['seconds']} s")
    write_json(results, out / "scale.json")
    (out / "scale.md").write_text(text + "\n")
    written = [out / "scale.json", out / "scale.md"]
    try:
        plot(results, out / "scale.png")
        written.append(out / "scale.png")
    except ImportError:
        say("plot", "matplotlib is not installed, so no plot: pip install matplotlib")
    if args.publish:
        for name in ("scale.json", "scale.png"):
            if (out / name).exists():
                shutil.copyfile(out / name, root / "benchmarks" / name)
                written.append(root / "benchmarks" / name)
        published = root / "benchmarks" / "RESULTS.md"
        published.write_text(splice(published.read_text(), text))
        written.append(published)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
