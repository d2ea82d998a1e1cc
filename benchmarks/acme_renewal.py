"""How long new connections fail while the proxy starts serving a renewed ACME certificate.

    python3 benchmarks/acme_renewal.py --renewals 10             # in place (SIGUSR2)
    python3 benchmarks/acme_renewal.py --renewals 10 --restart   # the restart fallback

Starts pebble on loopback and a hub wired by configure() with one running lab, then
forces renewals (acme_renew_days above the certificate's lifetime, a short
acme_check_interval). Two clients probe every 10 ms: new TLS connections to the
hub's port, and requests to the lab through the proxy. Prints, per renewal and as
median and maximum, the longest run of failed connections and of failed lab
requests. Needs root, Docker, labhub's image and configurable-http-proxy, like the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.progress import say  # noqa: E402
from labhub.cli.image import DEFAULT_IMAGE  # noqa: E402
from tests.support.hub import HubProcess  # noqa: E402
from tests.support.hubconfig import configured_config  # noqa: E402
from tests.support.pebble import Pebble  # noqa: E402
from tests.support.tls import ConnectionProbe, served_serial  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

DOMAIN = "lab.labhub.test"
#: configurable-http-proxy without LABHUB_TLS_CERT: it cannot reload in place and is restarted
RESTART_COMMAND = 'c.ConfigurableHTTPProxy.command = ["env", "-u", "LABHUB_TLS_CERT", "configurable-http-proxy"]\n'


class LabProbe(ConnectionProbe):
    """The lab's API through the proxy every ``interval`` seconds; a non-200 answer is a failure."""

    def __init__(self, hub: HubProcess, user: str, interval: float = 0.01) -> None:
        super().__init__(hub.port, DOMAIN, Path(), interval)
        self.hub, self.user = hub, user

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                ok = self.hub.user_request(self.user, "GET", "/api/status", timeout=2).ok
            except requests.RequestException:
                ok = False
            self.results.append((began, ok))
            self._stop.wait(self.interval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renewals", type=int, default=10)
    parser.add_argument("--interval", type=float, default=4.0, help="acme_check_interval")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="a proxy command that hides the preload's variables: measure the restart fallback",
    )
    args = parser.parse_args()
    import urllib3

    urllib3.disable_warnings()
    work = Path(tempfile.mkdtemp(prefix="labhub-acme-bench-"))
    pebble = Pebble(work / "pebble").start()
    root = work / "pebble-root.pem"
    root.write_text(pebble.root_pem())
    prefix = "labbench-acme"
    config = configured_config(
        DEFAULT_IMAGE,
        work / "lab",
        prefix,
        acme_domain=DOMAIN,
        acme_directory=pebble.directory,
        acme_ca_bundle=str(pebble.ca_bundle),
        acme_challenge_port=pebble.http_port,
        data_dir=str(work / "hub"),
        network="host",
    )
    hub = HubProcess(work / "hub", config)
    hub.scheme, hub.verify = "https", False
    try:
        hub.start(wait=120)
        hub.spawn("ada")
        say("acme", "lab running; restarting the hub with forced renewals")
        hub.stop()
        hub.config_path.write_text(
            hub.config_path.read_text()
            + f"\nc.LabAcme.renew_days = 100000\nc.LabAcme.check_interval = {args.interval}\n"
            + (RESTART_COMMAND if args.restart else "")
        )
        hub.start(wait=120)
        rows = []
        failed = probes = 0
        serial = served_serial(hub.port, DOMAIN, root)
        for n in range(args.renewals):
            with ConnectionProbe(hub.port, DOMAIN, root, 0.01) as tls, LabProbe(hub, "ada") as lab:
                new = wait_until(
                    lambda old=serial: (s := served_serial(hub.port, DOMAIN, root)) != old and s,
                    120,
                    0.05,
                    retry_on=(OSError,),
                )
                # until the lab answers through the restarted proxy again
                wait_until(
                    lambda: hub.user_request("ada", "GET", "/api/status", timeout=2).ok,
                    30,
                    0.01,
                    retry_on=(requests.RequestException,),
                )
                time.sleep(0.2)  # a few probes after recovery close the last failing run
            serial = new
            rows.append((tls.longest_outage(), lab.longest_outage()))
            failed += tls.failures() + lab.failures()
            probes += len(tls.results) + len(lab.results)
            say(
                "acme",
                f"renewal {n + 1}: new connections failed for {rows[-1][0]:.2f} s, "
                f"lab requests for {rows[-1][1]:.2f} s",
            )
        assert hub.server_model("ada")["ready"]
        tls_s, lab_s = [r[0] for r in rows], [r[1] for r in rows]
        print(
            f"renewals: {len(rows)} (cores: {os.cpu_count()}); failed probes: {failed} of {probes}"
        )
        print(
            f"new TLS connections failing: median {statistics.median(tls_s):.2f} s, max {max(tls_s):.2f} s"
        )
        print(
            f"lab requests failing:        median {statistics.median(lab_s):.2f} s, max {max(lab_s):.2f} s"
        )
    finally:
        hub.stop()
        with contextlib.suppress(Exception):
            import docker

            client = docker.from_env()
            for c in client.api.containers(all=True, filters={"name": prefix}):
                client.api.remove_container(c["Id"], force=True, v=True)
        pebble.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
