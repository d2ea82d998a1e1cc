"""A private Prometheus (Debian's package) on loopback that scrapes one hub's /hub/metrics with a token."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import requests
from jupyterhub.utils import random_port

from .processes import stop_process
from .waiting import wait_until


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


class Prometheus:
    """Prometheus in ``workdir`` scraping ``target`` (host:port) every second, answering on loopback."""

    def __init__(self, workdir: Path, target: str, token: str, path: str = "/hub/metrics"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = random_port()
        self.proc: subprocess.Popen | None = None
        config = f"""
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: labhub
            metrics_path: {path}
            authorization:
              type: Bearer
              credentials: {token}
            static_configs:
              - targets: ["{target}"]
        """
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(textwrap.dedent(config))
        self.log_path = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    prometheus_binary() or "prometheus",
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_until(
            lambda: requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200,
            60,
            0.25,
            what=lambda: f"prometheus ready:\n{self.log_path.read_text(errors='replace')[-2000:]}",
            retry_on=(requests.RequestException,),
        )
        return self

    def query(self, promql: str) -> list[dict]:
        """The instant vector ``promql`` gives now: a list of {metric: labels, value: [t, "v"]}."""
        r = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The single value of ``promql`` now; None when the result is empty."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        stop_process(self.proc, 20)
