"""Find or start a Docker engine, for ``labhub run`` and the test suite.

A lab in production runs on an engine the system manages; this module is for
a fresh machine where ``docker`` is only a client. It starts ``dockerd`` in the
background only when none answers, and stops only the one it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

DOCKER_SOCKET = "/var/run/docker.sock"


class EngineError(RuntimeError):
    """No Docker engine can be reached or started; the message says what to do."""


def engine_answers(timeout: float = 5.0) -> bool:
    """True when ``docker info`` gets an answer from an engine."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


@dataclass
class Engine:
    """A running engine; ``pid`` is set only when this process started it."""

    pid: int | None = None
    log_path: str | None = None

    @property
    def started_here(self) -> bool:
        return self.pid is not None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the engine if this process started it; an engine found running is left alone."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                # not our child (started by an earlier process): poll for it instead
                try:
                    os.kill(self.pid, 0)
                    done = 0
                except ProcessLookupError:
                    done = self.pid
            if done:
                break
            time.sleep(0.2)
        self.pid = None


def ensure_engine(log_path: str = "/tmp/labhub-dockerd.log", wait: float = 60.0) -> Engine:
    """Return a running engine, starting ``dockerd`` when none answers.

    Raises EngineError with one sentence when no engine can be had.
    """
    if engine_answers():
        return Engine()
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineError(
            "No Docker engine is running and dockerd is not installed; "
            "install one with 'apt-get install -y docker.io' (or start yours) and try again."
        )
    if os.geteuid() != 0:
        raise EngineError(
            "No Docker engine is running and only root can start one here; "
            "ask an admin to start Docker and add you to the docker group."
        )
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [dockerd, "--host", f"unix://{DOCKER_SOCKET}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    engine = Engine(pid=proc.pid, log_path=log_path)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineError(f"dockerd exited with code {proc.returncode}; see {log_path}.")
        if engine_answers(timeout=2.0):
            return engine
        time.sleep(0.5)
    engine.stop()
    raise EngineError(f"dockerd did not answer within {wait:.0f} s; see {log_path}.")
