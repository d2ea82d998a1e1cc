"""The lifecycle's pure parts: how often a starting lab is asked whether it is ready."""

from __future__ import annotations

from labhub.spawner.lifecycle import READINESS_CAP, readiness_interval


def test_one_lab_is_polled_often_a_burst_or_a_slow_lab_less_often_never_rarer_than_the_cap():
    assert readiness_interval(0) == readiness_interval(1) == 0.02
    assert readiness_interval(1, waited=0.9) == 0.02
    assert readiness_interval(10) == 0.2
    assert readiness_interval(1, waited=10) == 0.2  # seen within 2% of its own start time
    assert readiness_interval(50) == readiness_interval(500) == READINESS_CAP
    assert readiness_interval(1, waited=300) == READINESS_CAP


def test_docker_calls_run_in_several_threads_and_a_wrong_count_is_one_sentence():
    from types import SimpleNamespace

    import pytest
    from traitlets.config import Config

    from labhub import LabDockerSpawner

    class Spawner(LabDockerSpawner):  # its own class: the executor is made once per class
        pass

    c = Config()
    c.LabDockerSpawner.docker_api_threads = 4
    spawner = Spawner(config=c, user=SimpleNamespace(name="ann"))
    assert spawner.executor._max_workers == 4
    assert spawner.executor is Spawner(config=c, user=SimpleNamespace(name="ben")).executor
    spawner.executor.shutdown()
    for wrong in (0, 11):
        with pytest.raises(ValueError, match="between 1 and 10"):
            spawner.docker_api_threads = wrong


def test_two_host_network_labs_never_get_the_same_port(monkeypatch):
    """random_port() answers with a port that is free now: a lab that has not bound it yet
    does not stop it from being handed out again (seen in a burst of 50 cold labs)."""
    from types import SimpleNamespace

    from traitlets.config import Config

    from labhub import LabDockerSpawner
    from labhub.spawner import lifecycle as lab_spawner

    answers = iter([47001, 47001, 47002, 47001])
    monkeypatch.setattr(lab_spawner, "random_port", lambda: next(answers))
    monkeypatch.setattr(lab_spawner.LabSpawnerMixin, "_host_ports_in_use", set())
    c = Config()
    c.LabDockerSpawner.network_name = "host"
    ann, ben, cyd = (
        LabDockerSpawner(config=c, user=SimpleNamespace(name=n)) for n in ("ann", "ben", "cyd")
    )
    assert ann.reserve_host_port() == 47001
    ann.port = 47001
    assert ben.reserve_host_port() == 47002  # 47001 is ann's, though nothing listens yet
    ann.release_host_port()  # ann's lab stopped
    assert cyd.reserve_host_port() == 47001


async def test_a_lab_whose_address_does_not_answer_yet_is_waited_for_not_failed():
    """A new lab on a busy bridge may not answer a connection for a while (no ARP reply yet):
    the connection attempt times out instead of being refused. That is "not listening yet",
    not a failed spawn. Here a loopback listener with a full backlog drops connections
    until it starts serving, 2.5 s later."""
    import asyncio
    import socket
    import threading
    import time
    from types import SimpleNamespace

    from labhub.spawner.lifecycle import LabSpawnerMixin

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    # connections the listener never accepts fill its backlog: later ones get no answer
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)

    def serve_later() -> None:
        time.sleep(2.5)
        for filler in fillers:
            filler.close()
        server.settimeout(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    if conn.recv(4096):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                        return
                except OSError:
                    continue

    async def poll():
        return None

    lab = SimpleNamespace(
        http_timeout=20, server=None, uses_host_network=False, internal_ssl=False, poll=poll
    )
    thread = threading.Thread(target=serve_later, daemon=True)
    thread.start()
    began = time.monotonic()
    try:
        await asyncio.wait_for(LabSpawnerMixin.wait_for_server(lab, "127.0.0.1", port), 30)
    finally:
        thread.join(12)
        server.close()
    assert time.monotonic() - began >= 2  # it waited through the unanswered connections
