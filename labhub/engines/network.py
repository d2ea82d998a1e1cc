"""The labs' own Docker network, and the check that a host-network lab's port is really its own.

The functions here are pure (plain values in, plain values out) except
:func:`ensure_lab_network`, which takes a docker-py ``APIClient`` and is the one
place labhub creates a network. A labhub-made network is a bridge with
inter-container communication switched off (``enable_icc=false``): a lab reaches
the hub on the bridge's gateway address and the outside world through Docker's
NAT, and never another lab.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from labhub.hub.options import DEFAULT_NETWORK, DEFAULT_NETWORK_SUBNET

#: Label on every network labhub creates.
LABEL_NETWORK = "org.labhub.network"
#: The bridge option that stops containers on one network from talking to each other.
ICC_OPTION = "com.docker.network.bridge.enable_icc"
#: Networks that exist in every engine and that labhub never creates or changes.
ENGINE_NETWORKS = ("host", "bridge", "none", "")

__all__ = [
    "DEFAULT_NETWORK",
    "DEFAULT_NETWORK_SUBNET",
    "LabNetworkError",
    "ensure_lab_network",
    "gateway_address",
    "is_labhub_network",
    "network_create_args",
]


class LabNetworkError(RuntimeError):
    """The labs' network cannot be used; the message is one sentence naming the setting to change."""


def is_labhub_network(name: str) -> bool:
    """True for a network labhub makes (and isolates) itself; False for host, bridge and none."""
    return name not in ENGINE_NETWORKS


def gateway_address(subnet: str) -> str:
    """The bridge's own address in ``subnet``: its first host address, where the hub listens."""
    try:
        network = ipaddress.ip_network(subnet, strict=True)
    except ValueError:
        raise LabNetworkError(
            f"network_subnet must be a network such as {DEFAULT_NETWORK_SUBNET}, not {subnet!r}."
        ) from None
    if network.version != 4 or network.prefixlen > 29 or not network.is_private:
        raise LabNetworkError(
            f"network_subnet must be a private IPv4 network with room for labs (/29 or larger), "
            f"not {subnet}."
        )
    return str(next(network.hosts()))


def network_create_args(name: str, subnet: str) -> dict[str, Any]:
    """``APIClient.create_network`` keyword arguments (IPAM as a plain dict) of an isolated lab network."""
    return {
        "name": name,
        "driver": "bridge",
        "options": {ICC_OPTION: "false"},
        "ipam": {
            "Driver": "default",
            "Config": [{"Subnet": subnet, "Gateway": gateway_address(subnet)}],
        },
        "labels": {LABEL_NETWORK: "true"},
        "check_duplicate": True,
    }


@dataclass(frozen=True)
class NetworkReport:
    """What an existing network is: its gateway and whether labs on it can reach each other."""

    gateway: str
    isolated: bool
    made_by_labhub: bool


def describe_network(info: dict[str, Any]) -> NetworkReport:
    """Read ``inspect_network`` output."""
    configs = (info.get("IPAM") or {}).get("Config") or []
    gateway = next((c.get("Gateway", "") for c in configs if c.get("Gateway")), "")
    options = info.get("Options") or {}
    return NetworkReport(
        gateway=gateway,
        isolated=info.get("Driver") == "bridge" and options.get(ICC_OPTION) == "false",
        made_by_labhub=(info.get("Labels") or {}).get(LABEL_NETWORK) == "true",
    )


def check_existing(name: str, subnet: str, info: dict[str, Any]) -> NetworkReport:
    """Refuse an existing network whose gateway is not where the hub listens, or that lets labs meet."""
    report = describe_network(info)
    expected = gateway_address(subnet)
    if report.gateway != expected:
        raise LabNetworkError(
            f"The Docker network {name} has gateway {report.gateway or '(none)'}, but the hub "
            f"listens on {expected} (network_subnet {subnet}); set network_subnet to that "
            f"network's subnet, or remove the network so labhub makes it."
        )
    if not report.isolated:
        raise LabNetworkError(
            f"The Docker network {name} lets labs reach each other (no {ICC_OPTION}=false); "
            "remove it so labhub makes it isolated, or choose another network name."
        )
    return report


def ensure_lab_network(client: Any, name: str, subnet: str) -> NetworkReport:
    """Create the isolated lab network ``name`` if it is missing; check it if it exists.

    ``client`` is a docker-py ``APIClient``. Blocking: call it at hub start or from an executor.
    """
    from docker.errors import APIError, NotFound

    try:
        return check_existing(name, subnet, client.inspect_network(name))
    except NotFound:
        pass
    args = network_create_args(name, subnet)
    args["ipam"] = {"Driver": "default", "Config": args["ipam"]["Config"]}
    try:
        client.create_network(**args)
    except APIError as err:
        if "already exists" not in str(err):
            raise LabNetworkError(
                f"labhub cannot create the Docker network {name} on {subnet} "
                f"({err.explanation or err}); set network_subnet to a free private network."
            ) from None
    return check_existing(name, subnet, client.inspect_network(name))


def lab_network_gateway(app: Any) -> str | None:
    """The gateway address of the configured lab spawner's own network, or None (host network, other spawner)."""
    from labhub.spawner.settings import LabTraits

    spawner_class = getattr(app, "spawner_class", None)
    if not isinstance(spawner_class, type) or not issubclass(spawner_class, LabTraits):
        return None
    spawner = spawner_class(config=app.config)  # read for its settings only: no user
    if not is_labhub_network(spawner.network_name):
        return None
    try:
        return gateway_address(spawner.network_subnet)
    except LabNetworkError:
        return None


# --- host networking: whose port is it? ------------------------------------------------

#: Run inside a lab container as the lab uid: prints the TCP ports its own processes listen on.
#: Reads /proc only, so it works in any image that has a Python (every jupyterhub-singleuser image).
LISTENER_SCRIPT = r"""
import os
inodes = set()
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        pass
ports = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(table).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
print(" ".join(str(p) for p in sorted(ports)))
"""


def listener_command() -> list[str]:
    """The exec command that runs :data:`LISTENER_SCRIPT` with the image's Python."""
    return [
        "sh",
        "-c",
        'for p in python3 python; do command -v "$p" >/dev/null && exec "$p" -c "$0"; done; exit 127',
        LISTENER_SCRIPT,
    ]


def parse_listener_report(output: str) -> set[int]:
    """The ports in :data:`LISTENER_SCRIPT`'s output; garbage gives an empty set."""
    return {int(word) for word in output.split() if word.isdigit()}


def squatter_message(port: int) -> str:
    """One sentence for a user whose lab's port was answered by some other program."""
    return (
        f"Another program answered on port {port}, the one your lab was given, so the hub did "
        "not connect you to it; start your lab again, and tell the lab admin if this repeats."
    )
