"""Let's Encrypt's ACME test server (Debian's pebble) and its DNS (pebble-challtestsrv), on loopback.

The DNS answers every name with 127.0.0.1 (no IPv6 answer), so pebble validates an
HTTP-01 challenge by asking 127.0.0.1 on ``http_port``: the port the hub under test
serves its challenge on. Validation is real: ``PEBBLE_VA_ALWAYS_VALID`` is never set,
and ``PEBBLE_AUTHZREUSE=0`` makes every order prove the domain again.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import requests
from jupyterhub.utils import random_port

from labhub.cli.certs import make_self_signed

from .waiting import wait_until

#: A name the CA refuses by policy (pebble's domainBlocklist).
BLOCKED_DOMAIN = "blocked.labhub.test"


class Pebble:
    """One pebble and its DNS in ``workdir``; ``http_port`` is where pebble asks for HTTP-01 answers."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = random_port()
        self.management_port = random_port()
        self.http_port = random_port()
        self.dns_port = random_port()
        self.dns_management_port = random_port()
        # pebble's own listener: a certificate the tests hand labhub as acme_ca_bundle
        self.ca_bundle = self.workdir / "pebble-listener.crt"
        self.log_path = self.workdir / "pebble.log"
        self.procs: list[subprocess.Popen] = []

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def start(self) -> Pebble:
        key = self.workdir / "pebble-listener.key"
        make_self_signed(self.ca_bundle, key, ["127.0.0.1", "localhost"])
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(self.ca_bundle),
                "privateKey": str(key),
                "httpPort": self.http_port,
                "tlsPort": random_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
                "domainBlocklist": [BLOCKED_DOMAIN],
            }
        }
        config_path = self.workdir / "pebble.json"
        config_path.write_text(json.dumps(config))
        log = open(self.log_path, "ab")  # noqa: SIM115 (held by the processes until stop)
        self.procs.append(
            subprocess.Popen(
                [
                    "pebble-challtestsrv",
                    "-dns01",
                    f"127.0.0.1:{self.dns_port}",
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-defaultIPv6",
                    "",
                    "-management",
                    f"127.0.0.1:{self.dns_management_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
        }
        env.pop("PEBBLE_VA_ALWAYS_VALID", None)
        self.procs.append(
            subprocess.Popen(
                ["pebble", "-config", str(config_path), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        log.close()
        wait_until(
            lambda: requests.get(self.directory, verify=str(self.ca_bundle), timeout=2).ok,
            30,
            what=lambda: "pebble's directory:\n" + self.log_path.read_text(errors="replace"),
            retry_on=(requests.RequestException,),
        )
        return self

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()

    def root_pem(self) -> str:
        """The root pebble issues from (a new one at every pebble start)."""
        r = requests.get(
            f"https://127.0.0.1:{self.management_port}/roots/0",
            verify=str(self.ca_bundle),
            timeout=10,
        )
        r.raise_for_status()
        return r.text

    def orders(self) -> int:
        """How many new orders pebble has taken since it started (from its log)."""
        return self.log_path.read_text(errors="replace").count("Added order")

    def point_dns(self, host: str, address: str) -> None:
        """Answer ``host`` with ``address`` from now on, as a moved DNS record would."""
        r = requests.post(
            f"http://127.0.0.1:{self.dns_management_port}/add-a",
            json={"host": host, "addresses": [address]},
            timeout=10,
        )
        r.raise_for_status()

    def reset_dns(self, host: str) -> None:
        with contextlib.suppress(requests.RequestException):
            requests.post(
                f"http://127.0.0.1:{self.dns_management_port}/clear-a",
                json={"host": host},
                timeout=10,
            )
