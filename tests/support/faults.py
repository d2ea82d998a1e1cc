"""Helpers for the reliability suite: a private Docker engine to restart, small waits, lab listings.

The shared engine on /var/run/docker.sock is never stopped or restarted: a test
that restarts an engine starts its own ``dockerd`` with its own socket,
data-root, exec-root and pidfile in a short temporary folder, without a
bridge or iptables rules, and stops it by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import docker

from .processes import stop_process


def lab_containers(client: docker.DockerClient, prefix: str) -> list:
    """Every container (running or not) whose name starts with ``prefix``."""
    return [
        c
        for c in client.containers.list(all=True, filters={"name": prefix})
        if c.name.startswith(prefix)
    ]


def reliability_config(extra: str = "") -> str:
    """Hub settings for fault tests: servers survive a hub restart, a dead lab is seen within 1 s."""
    base = """
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.Spawner.poll_interval = 1
    c.ConfigurableHTTPProxy.check_running_interval = 1
    """
    return textwrap.dedent(base) + "\n" + textwrap.dedent(extra)


class PrivateEngine:
    """A dockerd of our own in a temporary folder; restartable with or without live-restore."""

    def __init__(self) -> None:
        # a short path: the engine's unix sockets must stay under 108 characters
        self.root = Path(tempfile.mkdtemp(prefix="lhe", dir="/tmp"))
        self.socket = self.root / "d.sock"
        self.pidfile = self.root / "d.pid"
        self.log_path = self.root / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self.live_restore = False

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @contextlib.contextmanager
    def client(self, timeout: int = 120) -> Iterator[docker.DockerClient]:
        """A client of this engine, closed when the block ends."""
        client = docker.DockerClient(base_url=self.base_url, timeout=timeout)
        try:
            yield client
        finally:
            client.close()

    def start(self, live_restore: bool = False, wait: float = 60.0) -> PrivateEngine:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise RuntimeError("dockerd is not installed")
        args = [
            dockerd,
            "--host",
            self.base_url,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.pidfile),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
        ]
        if live_restore:
            args.append("--live-restore")
        self.live_restore = live_restore
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private dockerd exited: {self.log_tail()}")
            with contextlib.suppress(Exception), self.client(timeout=2) as client:
                client.ping()
                return self
            time.sleep(0.25)
        raise RuntimeError(f"private dockerd did not answer in {wait} s: {self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM our dockerd and wait for it; without live-restore its containers stop too."""
        stop_process(self.proc, timeout)
        self.proc = None

    def restart(self, live_restore: bool | None = None) -> float:
        """Stop and start the engine; return the seconds it was away."""
        t0 = time.monotonic()
        self.stop()
        self.start(self.live_restore if live_restore is None else live_restore)
        return time.monotonic() - t0

    def load_image(self, tag: str) -> None:
        """Copy ``tag`` from the shared engine into this one (no registry is reachable)."""
        with self.client() as client, contextlib.suppress(docker.errors.ImageNotFound):
            client.images.get(tag)
            return
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "-H", self.base_url, "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        save.stdout.close()
        save.wait()
        if save.returncode or load.returncode:
            raise RuntimeError(f"could not load {tag} into the private engine: {load.stderr}")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def destroy(self) -> None:
        """Remove our containers, stop the engine, unmount what it left, delete the folder."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception), self.client(timeout=30) as client:
                for container in client.containers.list(all=True):
                    container.remove(force=True)
        self.stop()
        # a stopped engine may leave its netns file and data-root bind mounted
        with open("/proc/mounts") as f:
            mounted = [line.split()[1] for line in f]
        for point in sorted((m for m in mounted if m.startswith(str(self.root))), reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def folder_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content, to compare before and after a fault."""
    snapshot = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            snapshot[str(path.relative_to(root))] = path.read_bytes()
    return snapshot
