"""A real Jupyter Enterprise Gateway on loopback, with kernelspecs of its own."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
from jupyterhub.utils import random_port

from .processes import stop_process
from .waiting import wait_until

#: The one kernel the test gateway offers; its name proves a listing came from the gateway.
GATEWAY_KERNEL = "labhub-gateway-python"

#: Enterprise Gateway pins an older jupyter_client than JupyterHub's, so it gets a venv of its own.
GATEWAY_VENV = Path(os.environ.get("LABHUB_TEST_GATEWAY_VENV", "/var/tmp/labhub-test-gateway-venv"))
GATEWAY_PACKAGES = ("jupyter_enterprise_gateway", "ipykernel", "pyspark")


def gateway_python() -> str:
    """The venv's python, created on first use (about a minute, then cached)."""
    python = GATEWAY_VENV / "bin" / "python"
    marker = GATEWAY_VENV / ".labhub-complete"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(GATEWAY_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *GATEWAY_PACKAGES,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        marker.write_text("ok\n")
    return str(python)


class Gateway:
    def __init__(
        self,
        workdir: Path,
        extra_kernels: dict[str, dict] | None = None,
        kernel_dirs: dict[str, Path] | None = None,
        args: tuple[str, ...] = (),
    ):
        """``kernel_dirs``: folders copied in as kernelspecs (launchers beside their kernel.json),
        whose kernel.json ``extra_kernels`` may then replace."""
        self.workdir = workdir
        self.python = gateway_python()
        self.port = random_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "gateway.log"
        kernels = workdir / "share" / "jupyter" / "kernels"
        self.kernels_dir = kernels
        for name, source in (kernel_dirs or {}).items():
            shutil.copytree(source, kernels / name)
        specs = {
            GATEWAY_KERNEL: {
                "display_name": "Python on the gateway (labhub test)",
                "language": "python",
                "argv": [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "metadata": {
                    "process_proxy": {
                        "class_name": "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy"
                    }
                },
            },
            **{
                name: json.loads((kernels / name / "kernel.json").read_text())
                for name in kernel_dirs or {}
            },
            **(extra_kernels or {}),
        }
        for name, spec in specs.items():
            (kernels / name).mkdir(parents=True, exist_ok=True)
            (kernels / name / "kernel.json").write_text(json.dumps(spec, indent=1))
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.kernel_names = list(specs)

    def start(self, wait: float = 60) -> Gateway:
        env = {
            **os.environ,
            # only our kernelspecs: a listing with these names cannot come from the lab itself
            "JUPYTER_PATH": str(self.workdir / "share" / "jupyter"),
            "JUPYTER_DATA_DIR": str(self.workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "enterprise_gateway",
                    "--ip=127.0.0.1",
                    f"--port={self.port}",
                    f"--EnterpriseGatewayApp.auth_token={self.token}",
                    f"--EnterpriseGatewayApp.allowed_kernels={json.dumps(self.kernel_names)}",
                    f"--EnterpriseGatewayApp.default_kernel_name={GATEWAY_KERNEL}",
                    "--EnterpriseGatewayApp.kernel_spec_manager_class=jupyter_client.kernelspec.KernelSpecManager",
                    "--KernelSpecManager.ensure_native_kernel=False",
                    "--log-level=DEBUG",
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

        def answering() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.log_path.read_text()[-3000:]}")
            r = requests.get(f"{self.url}/api/kernelspecs", headers=self.headers, timeout=2)
            return r.status_code == 200

        wait_until(answering, wait, 0.25, "the gateway answering", (requests.RequestException,))
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc, 20)


def run_code(ws_url: str, headers: dict[str, str], code: str, timeout: float = 60) -> str:
    """Run ``code`` on a kernel over its websocket; return what it printed."""
    import websocket

    ws = websocket.create_connection(
        ws_url, header=[f"{k}: {v}" for k, v in headers.items()], timeout=timeout
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": uuid.uuid4().hex,
                        "username": "test",
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out = []
        replied = idle = False
        deadline = time.monotonic() + timeout
        # shell (execute_reply) and iopub (stream, status) are separate channels: the reply can
        # overtake the printed output, so wait for both the reply and the kernel going idle
        while time.monotonic() < deadline and not (replied and idle):
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        if not (replied and idle):
            raise TimeoutError(f"no execute_reply and idle status within {timeout} s")
        return "".join(out)
    finally:
        ws.close()
