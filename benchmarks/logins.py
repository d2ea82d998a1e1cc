"""LDAP login benchmarks: stock LDAPAuthenticator vs LabAuthenticator against one local slapd.

Both hubs get the same directory settings; logins go through the real login form.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import statistics
import threading
import time
from pathlib import Path

import requests

from benchmarks.progress import say
from tests.support.hub import HubProcess
from tests.support.slapd import DATASCI, PEOPLE, SilentServer, start_slapd

AUTHENTICATORS = {
    "stock": "ldapauthenticator.LDAPAuthenticator",
    "labhub": "labhub.LabAuthenticator",
}


def hub_config(kind: str, host: str, port: int, ca_file: str, extra: str = "") -> str:
    cls = AUTHENTICATORS[kind]
    section = cls.rsplit(".", 1)[1]
    lines = [
        f"c.JupyterHub.authenticator_class = {cls!r}",
        f"c.{section}.server_address = {host!r}",
        f"c.{section}.server_port = {port}",
        f"c.{section}.bind_dn_template = ['uid={{username}},{PEOPLE}']",
        f"c.{section}.allowed_groups = [{DATASCI!r}]",
        f"c.{section}.tls_strategy = 'before_bind'",
        f"c.{section}.tls_kwargs = {{'ca_certs_file': {ca_file!r}}}",
        "c.JupyterHub.log_level = 'WARN'",
    ]
    if kind == "labhub":
        lines.append("c.LabAuthenticator.mode = 'ldap'")
    return "\n".join(lines) + "\n" + extra


class Client:
    """A browser that logs in afresh each time: the login form's XSRF token is tied to its session."""

    def __init__(self, hub: HubProcess):
        self.hub = hub

    def login(self, user: str, password: str, timeout: float = 60) -> tuple[float, bool]:
        """Fetch the form (untimed), then time the POST that runs the authenticator."""
        session = requests.Session()
        session.get(f"{self.hub.url}/hub/login", timeout=30)
        t0 = time.perf_counter()
        r = session.post(
            f"{self.hub.url}/hub/login",
            data={"username": user, "password": password, "_xsrf": session.cookies.get("_xsrf")},
            allow_redirects=False,
            timeout=timeout,
        )
        return time.perf_counter() - t0, r.status_code == 302


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(hub: HubProcess, total: int, concurrency: int) -> dict:
    clients = [Client(hub) for _ in range(concurrency)]
    per_client = total // concurrency

    def run(client: Client) -> list[tuple[float, bool]]:
        return [client.login("alice", "alice-pw") for _ in range(per_client)]

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = [r for batch in pool.map(run, clients) for r in batch]
    latencies = [lat for lat, _ in results]
    # throughput from the authenticating requests alone: fetching the form is not a login
    busy = sum(latencies) / concurrency
    return {
        "logins": len(results),
        "per_second": len(results) / busy,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "failed": sum(not ok for _, ok in results),
    }


def stalled(kind: str, workdir: Path, ca_file: str, seconds: float) -> dict:
    """One login waits on a directory that accepts and never answers; others call /hub/api."""
    silent = SilentServer()
    hub = HubProcess(
        workdir / f"stalled-{kind}", hub_config(kind, "127.0.0.1", silent.port, ca_file)
    )
    hub.start()
    try:
        client = Client(hub)
        stuck = threading.Thread(target=lambda: _try_login(client), daemon=True)
        stuck.start()
        time.sleep(0.3)
        latencies, timed_out = [], 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                hub.api("GET", "/", timeout=5)
                latencies.append(time.perf_counter() - t0)
            except requests.RequestException:
                timed_out += 1
                latencies.append(5.0)
            time.sleep(0.05)
        return {
            "requests": len(latencies),
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": max(latencies) * 1000,
            "timed_out": timed_out,
        }
    finally:
        # a frozen stock hub does not answer SIGTERM in time; it is killed like a hung process
        hub.stop(sig=signal.SIGKILL)
        hub.stop_proxy()
        silent.close()


def _try_login(client: Client) -> None:
    with contextlib.suppress(requests.RequestException):
        client.login("alice", "alice-pw", timeout=120)


def run_login_benchmarks(workdir: Path, quick: bool = False) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    slapd = start_slapd(workdir / "slapd")
    results: dict = {"logins": {}, "stalled": {}}
    try:
        for kind in AUTHENTICATORS:
            hub = HubProcess(
                workdir / f"hub-{kind}",
                hub_config(kind, "127.0.0.1", slapd.port, str(slapd.ca_file)),
            )
            hub.start()
            try:
                results["logins"][kind] = {}
                for mode, total, concurrency in (
                    ("sequential", 20 if quick else 200, 1),
                    ("20 concurrent", 40 if quick else 400, 20),
                ):
                    r = results["logins"][kind][mode] = measure(hub, total, concurrency)
                    say(
                        "ldap",
                        f"{kind} {mode}: {r['logins']} logins, {r['per_second']:.1f}/s, "
                        f"p50 {r['p50_ms']:.0f} ms, {r['failed']} failed",
                    )
            finally:
                hub.stop()
        for kind in AUTHENTICATORS:
            r = results["stalled"][kind] = stalled(
                kind, workdir, str(slapd.ca_file), 5 if quick else 15
            )
            say(
                "ldap",
                f"{kind} with a stalled directory: {r['requests']} /hub/api requests, "
                f"p99 {r['p99_ms']:.0f} ms, {r['timed_out']} timed out",
            )
    finally:
        slapd.stop()
    return results
