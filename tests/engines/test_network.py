"""Labs on their own network: isolated from each other, the hub off public interfaces (review findings 1, 3)."""

from __future__ import annotations

import ipaddress
import json
import secrets
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from traitlets.config import Config

from labhub import configure
from labhub.engines.network import (
    ICC_OPTION,
    LABEL_NETWORK,
    LabNetworkError,
    check_existing,
    gateway_address,
    listener_command,
    network_create_args,
    parse_listener_report,
)
from labhub.hub.options import DEFAULT_NETWORK, DEFAULT_NETWORK_SUBNET

# --- pure: the network labhub makes, and where the hub listens ----------------------------


def test_the_default_network_is_labhubs_own_and_isolated():
    args = network_create_args(DEFAULT_NETWORK, DEFAULT_NETWORK_SUBNET)
    assert args["driver"] == "bridge"
    assert args["options"] == {ICC_OPTION: "false"}
    assert args["labels"] == {LABEL_NETWORK: "true"}
    assert args["ipam"]["Config"] == [{"Subnet": "10.213.0.0/20", "Gateway": "10.213.0.1"}]


@pytest.mark.parametrize("subnet", ["8.8.8.0/24", "10.0.0.1/24", "10.0.0.0/30", "fd00::/64", "x"])
def test_a_subnet_the_hub_cannot_listen_on_is_refused(subnet):
    with pytest.raises(LabNetworkError, match="network_subnet"):
        gateway_address(subnet)


def test_an_existing_network_that_lets_labs_meet_is_refused():
    info = {
        "Driver": "bridge",
        "IPAM": {"Config": [{"Subnet": "10.213.0.0/20", "Gateway": "10.213.0.1"}]},
        "Options": {},
    }
    with pytest.raises(LabNetworkError, match="reach each other"):
        check_existing("labhub-labs", DEFAULT_NETWORK_SUBNET, info)
    info["Options"] = {ICC_OPTION: "false"}
    assert check_existing("labhub-labs", DEFAULT_NETWORK_SUBNET, info).isolated
    with pytest.raises(LabNetworkError, match="gateway"):
        check_existing("labhub-labs", "10.99.0.0/24", info)


@pytest.mark.security
@pytest.mark.parametrize("network", [None, "labhub-labs", "team-net", "bridge", "host"])
def test_configure_never_puts_the_hub_on_every_interface(network, tmp_path, monkeypatch):
    for name in ("LABHUB_NETWORK", "LABHUB_NETWORK_SUBNET", "LABHUB_HUB_CONNECT_IP"):
        monkeypatch.delenv(name, raising=False)
    c = Config()
    configure(c, data_dir=str(tmp_path), auth_mode="dummy", dummy_password="x", network=network)
    hub_ip = ipaddress.ip_address(c.JupyterHub.hub_ip)
    assert not hub_ip.is_unspecified
    if network in (None, "labhub-labs", "team-net"):
        assert c.JupyterHub.hub_ip == c.JupyterHub.hub_connect_ip == "10.213.0.1"
        assert c.LabDockerSpawner.network_name == (network or DEFAULT_NETWORK)


def test_listener_report_names_the_ports_its_processes_hold():
    """The script the hub runs inside a host-network lab, run here against a listener of its own."""
    import subprocess

    script = listener_command()
    code = (
        "import socket; s = socket.create_server(('127.0.0.1', 0)); "
        f"print(s.getsockname()[1]); exec({script[3]!r})"
    )
    out = subprocess.run(["python3", "-c", code], capture_output=True, text=True, check=True)
    own, reported = out.stdout.split("\n", 1)
    assert int(own) in parse_listener_report(reported)
    assert parse_listener_report("garbage\n") == set()


# --- a real hub -----------------------------------------------------------------------------


@pytest.mark.security
def test_dummy_mode_refuses_a_hub_listener_on_every_interface(hub_factory):
    """Finding 3: the loopback guard looked at the proxy only; the hub's own port serves the form."""
    hub = hub_factory(
        """
        c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
        c.LabAuthenticator.mode = "dummy"
        c.LabAuthenticator.dummy_password = "lab-dev-password"
        c.JupyterHub.hub_ip = "0.0.0.0"
        """,
        start=False,
    )
    with pytest.raises(RuntimeError, match="hub exited"):
        hub.start(wait=30)
    assert "Dummy mode refuses a hub listening on http://0.0.0.0:" in hub.log_text()


def _free_subnet(docker_client) -> str:
    taken = [
        ipaddress.ip_network(c["Subnet"])
        for n in docker_client.api.networks()
        for c in (n.get("IPAM") or {}).get("Config") or []
        if "Subnet" in c and ":" not in c["Subnet"]
    ]
    for _ in range(50):
        candidate = ipaddress.ip_network(f"10.214.{secrets.randbelow(250) + 2}.0/24")
        if not any(candidate.overlaps(t) for t in taken):
            return str(candidate)
    pytest.fail("no free 10.214.x.0/24 subnet for the test network")


@pytest.fixture
def test_network(docker_client, lab_prefix):
    """A network name and subnet for this test only; the network and its labs are removed after."""
    name, subnet = f"{lab_prefix}-net", _free_subnet(docker_client)
    yield name, subnet
    for container in docker_client.containers.list(all=True, filters={"name": lab_prefix}):
        container.remove(force=True)
    for network in docker_client.networks.list(names=[name]):
        network.remove()


def _lab_address(container) -> tuple[str, int]:
    """Where another lab would reach ``container``'s single-user server."""
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    port = int(env["JUPYTERHUB_SERVICE_URL"].rsplit(":", 1)[1].split("/", 1)[0])
    if container.attrs["HostConfig"]["NetworkMode"] == "host":
        return "127.0.0.1", port
    networks = container.attrs["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"], port


PROBE = """
import json, socket, sys
result = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        result[f"{host}:{port}"] = "connected"
    except OSError as err:
        result[f"{host}:{port}"] = type(err).__name__
print(json.dumps(result))
"""


@pytest.mark.security
@pytest.mark.slow
def test_a_lab_on_the_default_network_reaches_the_hub_and_the_index_but_no_other_lab(
    hub_factory, lab_image, lab_root, lab_prefix, test_network, docker_client
):
    """Finding 1: two labs started with configure()'s defaults (only the network's name and
    subnet are this test's own); from inside one, the other's server and kernel ports are shut."""
    name, subnet = test_network
    hub = hub_factory(
        f"""
        import labhub
        labhub.configure(c, lab_root={str(lab_root)!r}, image={lab_image!r},
                         auth_mode="dummy", dummy_password="lab-dev-password", idle_timeout=0)
        c.LabDockerSpawner.prefix = {lab_prefix!r}
        c.LabDockerSpawner.pull_policy = "never"
        """,
        env={"LABHUB_NETWORK": name, "LABHUB_NETWORK_SUBNET": subnet},
    )
    hub.spawn("ada")
    hub.spawn("bob")
    labs = {
        c.labels["org.labhub.user"]: c
        for c in docker_client.containers.list(filters={"label": "org.labhub.lab=true"})
        if c.name.startswith(lab_prefix)
    }
    ada, bob = labs["ada"], labs["bob"]
    bob_ip, bob_port = _lab_address(bob)

    r = hub.user_request("bob", "POST", "/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    found = bob.exec_run(
        ["sh", "-c", 'cat "$(jupyter --runtime-dir)"/kernel-*.json'], user="2100:2100"
    )
    connection = json.loads(found.output.decode())
    kernel_ports = [connection[k] for k in connection if k.endswith("_port")]
    if connection["transport"] == "tcp":
        assert kernel_ports
        kernel_targets = [(bob_ip, p) for p in kernel_ports] + [
            ("127.0.0.1", p) for p in kernel_ports
        ]
    else:
        kernel_targets = []  # Unix sockets in bob's own HOME: no port to try

    env = dict(e.split("=", 1) for e in ada.attrs["Config"]["Env"])
    hub_host, hub_port = env["JUPYTERHUB_API_URL"].split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)

    targets = [(bob_ip, bob_port), *kernel_targets, (hub_host, int(hub_port))]
    probe = ada.exec_run(["python3", "-c", PROBE, json.dumps(targets)], user="2100:2100")
    result = json.loads(probe.output.decode().strip().splitlines()[-1])
    assert result.pop(f"{hub_host}:{hub_port}") == "connected", "a lab must reach the hub API"
    assert all(v != "connected" for v in result.values()), result
    assert not ipaddress.ip_address(hub_host).is_unspecified

    pip = ada.exec_run(
        ["python3", "-m", "pip", "install", "--no-cache-dir", "--target", "/tmp/pkgs", "six"],
        user="2100:2100",
        environment={"PIP_USER": "0"},  # whatever the lab's own pip settings say
    )
    assert pip.exit_code == 0, pip.output.decode()[-500:]


class _Squatter(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        _Squatter.seen.append(dict(self.headers))
        body = b'{"version": "2.0.0"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


#: Config lines for a hub that cannot read the lab's processes from /proc (a hub in a container).
ASK_INSIDE = """
import labhub.engines.host_listeners

def _unknown(*args, **kwargs):
    raise labhub.engines.host_listeners.Unknown("this test's hub asks inside the lab")

labhub.engines.host_listeners.container_listeners = _unknown
"""


@pytest.mark.security
@pytest.mark.slow
@pytest.mark.parametrize("where", ["host /proc", "inside the lab"])
def test_host_networking_refuses_a_program_squatting_the_labs_port(
    where, hub_factory, lab_image, lab_root, lab_prefix
):
    """Finding 1 on host networking: a local program holds the port the hub picks for a lab.

    The hub reads who listens from the host's /proc when it can, and asks inside the
    lab otherwise: both must refuse the squatter.
    """
    from tests.conftest import lab_spawner_config

    squatter = HTTPServer(("127.0.0.1", 0), _Squatter)
    port = squatter.server_address[1]
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    try:
        hub = hub_factory(
            lab_spawner_config(
                lab_image,
                lab_root,
                lab_prefix,
                textwrap.dedent(
                    f"""
                    import labhub.spawner.lifecycle
                    # the port the squatter already holds is the one the hub picks
                    labhub.spawner.lifecycle.random_port = lambda: {port}
                    """
                )
                + (ASK_INSIDE if where == "inside the lab" else ""),
            )
        )
        with pytest.raises(Exception) as refused:
            hub.spawn("carol", wait=60)
        assert "Another program answered on port" in str(refused.value) + hub.log_text()
        assert hub.server_model("carol") is None or not hub.server_model("carol").get("ready")
        assert all("Authorization" not in h for h in _Squatter.seen), "a token went to the squatter"
    finally:
        squatter.shutdown()


@pytest.mark.slow
def test_a_hub_that_cannot_read_proc_asks_inside_the_lab(
    hub_factory, docker_client, lab_image, lab_root, lab_prefix
):
    """No /proc view of the lab (a hub in its own PID namespace): the lab is still served."""
    from tests.conftest import lab_spawner_config
    from tests.support.labs import lab_container, lab_exec

    hub = hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, ASK_INSIDE))
    hub.spawn("dave", wait=90)
    assert hub.server_model("dave")["ready"]
    code, _ = lab_exec(lab_container(docker_client, lab_prefix, "dave"), ["true"])
    assert code == 0


@pytest.mark.security
@pytest.mark.parametrize(("network", "transport"), [("host", "ipc"), ("labhub-labs", "tcp")])
def test_kernels_use_unix_sockets_on_the_shared_host_loopback(network, transport):
    """On host networking kernel TCP ports would sit on the loopback every lab shares."""
    from types import SimpleNamespace

    from labhub import LabDockerSpawner

    spawner = LabDockerSpawner(network_name=network, user=SimpleNamespace(name="ada"))
    assert spawner.lab_kernel_transport == transport
    assert ("--KernelManager.transport=ipc" in spawner.get_args()) == (transport == "ipc")
