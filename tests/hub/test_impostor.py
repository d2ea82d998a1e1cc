"""An impostor hub on host networking: a lab binding the hub's port while the hub is down gets nothing."""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import textwrap
from urllib.parse import urlparse

import pytest
import requests

from ..support.hubconfig import PASSWORD, configured_config
from ..support.labs import lab_container, lab_exec
from ..support.waiting import wait_until

pytestmark = pytest.mark.security

#: Run in a lab as the lab uid: hold 127.0.0.1:PORT like the hub would, and keep what arrives.
SQUATTER = r"""
import os, socket, sys
home = os.path.expanduser("~")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(16)
except OSError as err:
    open(f"{home}/squatter.status", "w").write(f"refused errno {err.errno}")
    raise SystemExit
open(f"{home}/squatter.status", "w").write("bound")
while True:
    conn, _ = s.accept()
    conn.settimeout(2)
    data = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            head, end, body = data.partition(b"\r\n\r\n")
            sizes = [h[15:] for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:")]
            if end and len(body) >= int(sizes[0] if sizes else 0):
                break
    except OSError:
        pass
    with open(f"{home}/squatter.log", "ab") as f:
        f.write(data + b"\n")
    # answer like the hub's API would for a valid token
    answer = b'{"kind": "user", "name": "bob", "scopes": ["access:servers!user=bob"]}'
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
    conn.close()
"""


def free_privileged_port() -> int:
    """A port below 1024 nothing on this machine's loopback holds (the tests run as root)."""
    for _ in range(50):
        port = 600 + secrets.randbelow(250)
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port below 1024 on 127.0.0.1")


def lab_env(container) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])


@pytest.mark.slow
def test_a_lab_cannot_impersonate_the_hub_while_it_is_down(
    hub_factory, docker_client, lab_image, lab_root, lab_prefix
):
    """Finding 2 of the second review: SIGKILL the hub; a lab squats its port on the shared loopback.

    The proxy and the labs keep running. Whatever the squatter in alice's lab
    manages, a login POST through the proxy and a token check by bob's lab must
    not reach it.
    """
    public = free_privileged_port()
    config = configured_config(
        lab_image,
        lab_root,
        lab_prefix,
        network="host",
        # the hub's ports are configure()'s choice on host networking, as in a deployment
        before=textwrap.dedent(
            f"""
            del c.JupyterHub["hub_port"]
            del c.ConfigurableHTTPProxy["api_url"]
            c.JupyterHub.port = {public}
            c.HostNetworkGuard.allow_unprivileged_ports = False
            """
        ),
    )
    hub = hub_factory(config, start=False)
    hub.port = public
    hub.start()
    hub.spawn("alice", wait=90)
    hub.spawn("bob", wait=90)
    alice = lab_container(docker_client, lab_prefix, "alice")
    hub_port = urlparse(lab_env(alice)["JUPYTERHUB_API_URL"]).port

    hub.stop(sig=signal.SIGKILL)  # a crash: the proxy and both labs keep running
    alice.exec_run(
        ["python3", "-c", SQUATTER, str(hub_port)], user=alice.attrs["Config"]["User"], detach=True
    )

    def squatter_status() -> str:
        code, out = lab_exec(alice, ["sh", "-c", 'cat "$HOME/squatter.status" 2>/dev/null'])
        return out.strip()

    status = wait_until(squatter_status, 15, 0.2, what="the squatter's bind")
    print(f"\nhub port {hub_port}: the squatter's bind {status}")

    # a user logs in through the proxy, which routes /hub/ to the hub's port
    with contextlib.suppress(requests.RequestException):
        requests.post(
            f"{hub.url}/hub/login",
            data={"username": "carol", "password": PASSWORD},
            allow_redirects=False,
            timeout=10,
        )
    # bob's lab checks a token it was shown against the hub's API
    token = secrets.token_hex(16)
    served = 0
    with contextlib.suppress(requests.RequestException):
        served = hub.user_request(
            "bob", "GET", "/api/contents", headers={"Authorization": f"token {token}"}, timeout=20
        ).status_code

    _, received = lab_exec(alice, ["sh", "-c", 'cat "$HOME/squatter.log" 2>/dev/null'])
    print(f"bob's lab answered a made-up token with {served}; the squatter received:\n{received}")
    assert PASSWORD not in received, "the login form, password included, reached the squatter"
    assert token not in received, "bob's lab asked the squatter whether a token was good"
    assert served != 200, "bob's lab served someone with a token the hub never made"
    assert hub_port < 1024 and status.startswith("refused"), status
