"""A real JupyterHub (with configurable-http-proxy) in a subprocess, on loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import requests
from jupyterhub.utils import random_port, url_escape_path

from .waiting import wait_until


def start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (a reused pid has another), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the command may hold spaces and parentheses: fields start after the last ')'
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def descendants(root: int) -> dict[int, str]:
    """Every living process below ``root`` (children, their children...), with start times."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                started = start_time(pid)
                if started is not None:
                    found[pid] = started
                    frontier.append(pid)
    return found


class HubProcess:
    """One hub in ``workdir``; ``config`` is Python appended to a loopback-only base config.

    The hub, its proxy and every single-user server listen on 127.0.0.1 only.
    A service token with the admin role (``self.token``) drives the REST API
    and reaches users' servers through the proxy.
    """

    def __init__(self, workdir: Path, config: str, env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = random_port()
        self.hub_port = random_port()
        self.proxy_api_port = random_port()
        self.token = secrets.token_hex(16)
        self.proxy_token = secrets.token_hex(16)
        self.scheme = "http"
        self.config_path = self.workdir / "jupyterhub_config.py"
        self.log_path = self.workdir / "hub.log"
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self._started: dict[int, str] = {}  # pid -> start time of what the hub started
        base = f"""
        c = get_config()  # noqa
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {self.port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {self.hub_port}
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
        c.ConfigurableHTTPProxy.pid_file = {str(self.workdir / "proxy.pid")!r}
        c.JupyterHub.db_url = "sqlite:///{self.workdir / "hub.sqlite"}"
        c.JupyterHub.cookie_secret_file = {str(self.workdir / "cookie_secret")!r}
        c.JupyterHub.pid_file = {str(self.workdir / "hub.pid")!r}
        c.JupyterHub.services = [{{"name": "tests", "api_token": {self.token!r}}}]
        c.JupyterHub.load_roles = [{{"name": "admin", "services": ["tests"]}}]
        c.JupyterHub.log_level = "DEBUG"
        # random ports above 1024 on host networking: tests/hub/test_impostor.py turns this off
        c.HostNetworkGuard.allow_unprivileged_ports = True
        c.Spawner.start_timeout = 120
        c.Spawner.http_timeout = 120
        """
        self.config_path.write_text(textwrap.dedent(base) + "\n" + textwrap.dedent(config))

    def add_config(self, config: str) -> None:
        """Append lines that need this hub's own address (its port is chosen at construction)."""
        with open(self.config_path, "a") as f:
            f.write("\n" + textwrap.dedent(config))

    # --- lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, wait: float = 60.0) -> HubProcess:
        env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": self.proxy_token, **self.extra_env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(self.config_path)],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

        def answering() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            return self.api("GET", "/", timeout=2).status_code == 200

        try:
            wait_until(answering, wait, 0.25, retry_on=(requests.RequestException,))
        except TimeoutError:
            raise RuntimeError(f"hub did not answer within {wait} s:\n{self.log_tail()}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Stop the hub (SIGTERM: clean shutdown; SIGKILL: a crash) and what it started.

        A clean stop also ends the proxy and any managed service (the idle culler)
        the hub left running; a crash leaves them, as in production, until :meth:`reap`.
        """
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._started.update(descendants(self.proc.pid))
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if sig == signal.SIGKILL:
            return  # a crashed hub leaves its proxy running, as in production
        self.stop_proxy()
        self.reap()

    def reap(self, timeout: float = 5.0) -> None:
        """End every process this hub started that outlived it (by pid, checked by start time)."""
        left = {pid: t for pid, t in self._started.items() if start_time(pid) == t}
        self._started.clear()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not {p for p, t in left.items() if start_time(p) == t}, timeout, 0.1)
        left = {pid: t for pid, t in left.items() if start_time(pid) == t}
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop_proxy(self) -> None:
        pid_file = self.workdir / "proxy.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- REST API -------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("verify", getattr(self, "verify", True))
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, **kwargs)

    def user_request(self, user: str, method: str, path: str, **kwargs) -> requests.Response:
        """A request to ``user``'s single-user server through the proxy."""
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("verify", getattr(self, "verify", True))
        quoted = url_escape_path(user)
        return requests.request(
            method, f"{self.url}/user/{quoted}{path}", headers=headers, **kwargs
        )

    def create_user(self, name: str) -> str:
        """Create ``name`` and return the hub's (normalised) name; UserRejected if it refuses it."""
        r = self.api("POST", "/users", json={"usernames": [name]})
        if r.status_code == 400 and "Invalid username" in r.text:
            raise UserRejected(name)
        if r.status_code == 201:
            return r.json()[0]["name"]
        if r.status_code == 409:
            return name
        raise RuntimeError(f"creating {name!r}: {r.status_code} {r.text}")

    def spawn(self, name: str, options: dict | None = None, wait: float = 120.0) -> dict:
        """Start ``name``'s server and wait until the hub says it is ready; return the user model."""
        name = self.create_user(name)
        quoted = url_escape_path(name)
        r = self.api("POST", f"/users/{quoted}/server", json=options or {})
        if r.status_code not in (201, 202):
            raise SpawnFailed(r.status_code, r.text)
        return self.wait_ready(name, wait)

    def wait_ready(self, name: str, wait: float = 120.0) -> dict:
        quoted = url_escape_path(name)

        def ready() -> dict | None:
            model = self.api("GET", f"/users/{quoted}").json()
            server = (model.get("servers") or {}).get("")
            if server is None:
                raise SpawnFailed(
                    500, f"{name}'s server stopped while starting:\n{self.log_tail()}"
                )
            return model if server.get("ready") else None

        return wait_until(
            ready,
            wait,
            what=lambda: f"{name}'s server ready:\n{self.log_tail()}",
            retry_on=(requests.RequestException,),
        )

    def server_model(self, name: str) -> dict | None:
        """The hub's model of ``name``'s default server, or None when it has none."""
        model = self.api("GET", f"/users/{url_escape_path(name)}").json()
        return (model.get("servers") or {}).get("")

    def progress_events(self, name: str) -> list[dict]:
        """The events of ``name``'s spawn progress stream, up to the failed or ready one."""
        r = self.api("GET", f"/users/{name}/server/progress", stream=True, timeout=30)
        events = []
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1].get("failed") or events[-1].get("ready"):
                    break
        r.close()
        return events

    def stop_server(self, name: str, wait: float = 60.0) -> None:
        quoted = url_escape_path(name)
        r = self.api("DELETE", f"/users/{quoted}/server")
        if r.status_code not in (202, 204, 400):
            raise RuntimeError(f"stopping {name}: {r.status_code} {r.text}")
        wait_until(
            lambda: not self.api("GET", f"/users/{quoted}").json().get("servers"),
            wait,
            what=f"{name}'s server stopped",
            retry_on=(requests.RequestException,),
        )


class UserRejected(ValueError):
    """The hub refused a username as invalid."""


class SpawnFailed(RuntimeError):
    def __init__(self, status: int, text: str):
        super().__init__(f"spawn failed ({status}): {text}")
        self.status = status
        self.text = text
