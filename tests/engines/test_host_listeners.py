"""Reading a lab's listening ports from the host's /proc: a real container on the host network."""

from __future__ import annotations

import secrets
import socket

import pytest

from labhub.engines import host_listeners
from labhub.engines.host_listeners import (
    Unknown,
    container_listeners,
    container_pids,
    listening_ports,
)

from ..support.waiting import wait_until

# Two rows of /proc/net/tcp: a listener on 127.0.0.1:8888 (inode 4242) and an
# established connection from port 8888 (same inode space, state 01).
TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:22B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  2100        0 4242 1
   1: 0100007F:22B8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  2100        0 4343 1
"""


def test_only_listening_sockets_of_the_given_inodes_count():
    assert listening_ports(TABLE, {"4242"}) == {8888}
    assert listening_ports(TABLE, {"4343"}) == set()  # connected, not listening
    assert listening_ports(TABLE, {"9999"}) == set()  # someone else's listener
    assert listening_ports("garbage", {"4242"}) == set()


def test_an_id_that_names_no_cgroup_is_unknown_never_empty():
    with pytest.raises(Unknown):
        container_pids("abc123")  # a short id names no cgroup
    with pytest.raises(Unknown):
        container_pids("0" * 64)  # no process here belongs to it: another PID namespace


def test_a_listing_the_hub_may_not_read_is_unknown(tmp_path, monkeypatch):
    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(host_listeners.os, "listdir", refuse)
    with pytest.raises(Unknown, match="not root"):
        host_listeners.socket_inodes([1])


@pytest.mark.slow
def test_the_host_sees_what_the_container_listens_on(docker_client, lab_image):
    """A real container on the host network: its port is reported, a host program's is not."""
    own = socket.create_server(("127.0.0.1", 0))  # a listener outside the container
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    container = docker_client.containers.run(
        lab_image,
        ["python3", "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        name=f"labhub-test-listen-{secrets.token_hex(3)}",
        network_mode="host",
        user="2100:2100",
        detach=True,
    )
    try:

        def listening() -> set[int] | None:
            found = container_listeners(container.id)
            return found if port in found else None

        ports = wait_until(listening, 30, 0.1, f"the container listening on {port}")
        assert port in ports
        assert own.getsockname()[1] not in ports
    finally:
        container.remove(force=True)
        own.close()
