"""A lab's kernel driven as JupyterLab drives it: started over REST, run over its websocket, through the hub's proxy."""

from __future__ import annotations

import io
import json
import ssl
import time
import uuid
import zipfile
from dataclasses import dataclass, field

import websocket
from jupyterhub.utils import url_escape_path


@dataclass
class Outcome:
    """What one cell printed: its streams, its rich results, and the error it raised, if any."""

    stdout: str = ""
    stderr: str = ""
    results: list[dict] = field(default_factory=list)
    error: str = ""

    @property
    def text(self) -> str:
        return "\n".join(
            [self.stdout, self.stderr, self.error, *(r.get("text/plain", "") for r in self.results)]
        )


class Kernel:
    """One kernel of ``user``'s lab; :meth:`run` executes a cell and waits until the kernel is idle."""

    def __init__(self, hub, user: str, name: str = "python3", timeout: float = 60.0):
        self.hub, self.user = hub, user
        r = hub.user_request(user, "POST", "/api/kernels", json={"name": name}, timeout=timeout)
        assert r.status_code == 201, (r.status_code, r.text[:300])
        self.id = r.json()["id"]
        self.session = uuid.uuid4().hex
        url = (
            hub.url.replace("http", "ws", 1)
            + f"/user/{url_escape_path(user)}/api/kernels/{self.id}/channels"
        )
        verify = getattr(hub, "verify", True)
        sslopt = {"cert_reqs": ssl.CERT_NONE} if verify is False else {}
        if isinstance(verify, str):
            sslopt = {"ca_certs": verify}
        self.ws = websocket.create_connection(
            url,
            header=[f"Authorization: token {hub.token}"],
            sslopt=sslopt,
            timeout=timeout,
            suppress_origin=True,
        )

    def run(self, code: str, timeout: float = 180.0) -> Outcome:
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": self.user,
                        "session": self.session,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        outcome = Outcome()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    outcome.stdout += content["text"]
                else:
                    outcome.stderr += content["text"]
            elif kind in ("execute_result", "display_data"):
                outcome.results.append(content["data"])
            elif kind == "error":
                outcome.error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                return outcome
        raise TimeoutError(f"the cell did not finish within {timeout} s: {outcome.text[-500:]}")

    def close(self) -> None:
        self.ws.close()
        self.hub.user_request(self.user, "DELETE", f"/api/kernels/{self.id}")

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def probe_wheel(name: str = "labhub_probe", version: str = "1.0") -> bytes:
    """A one-module pure-Python wheel (``import name``; ``name.VALUE == 42``), so pip needs no index."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        ),
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: labhub-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for path, text in {**files, f"{dist}/RECORD": record}.items():
            wheel.writestr(path, text)
    return buffer.getvalue()
