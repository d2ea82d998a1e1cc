"""The recorder: off the spawn path, samples kept, unknown stays unknown, stop reasons, the notice."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from labhub.usage import accounting, reasons
from labhub.usage.lab_usage import LabFacts, LabUsage
from labhub.usage.recorder import UsageRecorder, UsageSettings, over_limit_notice
from labhub.usage.store import Sample, UsageStore

LOG = logging.getLogger("test")

FACTS = LabFacts(
    user="ann",
    server_name="",
    groups=("physics",),
    profile="gpu",
    image="img",
    gpus=("0",),
    gpu_count=1,
    engine="docker",
    object_id="c1",
    warm=False,
)


class SlowStore(UsageStore):
    """A records file whose writes wait until the test lets them through."""

    gate = threading.Event()

    def add(self, record):
        assert self.gate.wait(30)
        super().add(record)


def test_a_start_does_not_wait_for_the_file(tmp_path):
    async def scenario():
        SlowStore.gate.clear()
        made = UsageRecorder(
            UsageSettings(str(tmp_path / "u.sqlite"), sample_interval=3600),
            None,
            LOG,
            opener=lambda path, warn: SlowStore(path),
            sampler=lambda client, object_id: Sample(),
        )
        usage = LabUsage(made)
        t0 = time.perf_counter()
        for _ in range(200):
            usage.started(FACTS, 1.0)
        per_start = (time.perf_counter() - t0) / 200
        print(f"\nrecording a start costs the spawn {per_start * 1e6:.0f} µs (file write blocked)")
        assert len(made.running) == 200  # all noted while the file still waits
        SlowStore.gate.set()
        await made.flush()
        assert len(made.store.records()) == 200
        return per_start

    assert asyncio.run(scenario()) < 0.005


def test_samples_are_kept_and_unknown_is_never_zero(tmp_path):
    readings = iter([Sample(cpu_seconds=2.0, peak_memory_bytes=10), Sample(), Sample()])

    async def scenario():
        made = UsageRecorder(
            UsageSettings(str(tmp_path / "u.sqlite"), sample_interval=3600),
            None,
            LOG,
            sampler=lambda client, object_id: next(readings),
        )
        usage = LabUsage(made)
        usage.started(FACTS, 1.0)
        await made.sample_running()  # the lab runs: 2 CPU-seconds
        await made.sample_running()  # the engine shows nothing now
        await usage.stopping("ann", "c1")  # nor at the stop: the last reading stays
        await made.flush()
        return made.store.records()

    (record,) = asyncio.run(scenario())
    assert (record.cpu_seconds, record.peak_memory_bytes) == (2.0, 10)
    assert record.stop_reason == "hub restart"  # no request on the stack: the hub itself


def test_a_lab_never_read_is_unknown(tmp_path):
    async def scenario():
        made = UsageRecorder(
            UsageSettings(str(tmp_path / "u.sqlite")),
            None,
            LOG,
            sampler=lambda client, object_id: Sample(),
        )
        usage = LabUsage(made)
        usage.started(FACTS, 1.0)
        usage.died()
        await made.flush()
        return made.store.records()

    (record,) = asyncio.run(scenario())
    assert record.stop_reason == "died"
    assert record.cpu_seconds is None and record.peak_memory_bytes is None


@pytest.mark.parametrize(
    ("handler", "kind", "name", "reason"),
    [
        ("LogoutHandler", "user", "ann", "logout"),
        ("UserServerAPIHandler", "service", "idle-culler", "cull"),
        ("UserServerAPIHandler", "service", "backup", "admin"),
        ("UserServerAPIHandler", "user", "ann", "user"),
        ("UserServerAPIHandler", "user", "root", "admin"),
    ],
)
def test_stop_reasons(handler, kind, name, reason):
    assert reasons.reason_for(handler, kind, name, "ann") == reason


def test_the_reason_is_read_from_the_request_on_the_stack():
    from tornado.web import Application, RequestHandler

    class LogoutHandler(RequestHandler):
        def work(self):
            return reasons.stop_reason("ann")

    request = type("R", (), {"connection": None, "headers": {}})()
    handler = LogoutHandler.__new__(LogoutHandler)  # no connection needed to be on the stack
    handler.application, handler.request = Application(), request
    assert handler.work() == "logout"
    assert reasons.stop_reason("ann") == "hub restart"


def test_accounting_from_the_engines_stats():
    v1 = {
        "cpu_stats": {"cpu_usage": {"total_usage": 5_250_000_000}},
        "memory_stats": {"max_usage": 7},
    }
    assert accounting.cpu_seconds(v1) == 5.25
    assert accounting.peak_memory(v1, None) == 7
    v2 = {"cpu_stats": {"cpu_usage": {"total_usage": 10**9}}, "memory_stats": {"usage": 5}}
    assert accounting.peak_memory(v2, "123456\n") == 123456
    stopped = {"cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}}
    assert accounting.cpu_seconds(stopped) is None
    assert accounting.peak_memory(stopped, "cat: no such file") is None


def test_the_notice_only_over_the_limit():
    assert (
        over_limit_notice(None, 10) == over_limit_notice(5, 10) == over_limit_notice(5, None) == ""
    )
    notice = over_limit_notice(21 * 1024**3, 20 * 1024**3)
    assert notice == (
        "Your personal folder holds 21.0 GiB, more than the lab's soft limit of 20.0 GiB; "
        "please delete or move what you no longer need (labhub deletes nothing for you)."
    )


def test_folder_sizes_are_bounded_in_time(tmp_path):
    from labhub.usage.sizes import folder_bytes

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 100_000)
    (tmp_path / "link").symlink_to("/usr")  # not followed
    size, complete = folder_bytes(str(tmp_path), 30)
    assert complete and 100_000 <= size < 200_000
    partial, complete = folder_bytes(str(tmp_path), -1)  # out of time at once
    assert not complete and partial < size
    assert folder_bytes(str(tmp_path / "missing"), 30) == (None, True)
