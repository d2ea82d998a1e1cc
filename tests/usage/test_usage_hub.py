"""Usage through a real hub and real labs: CPU a cell burns, a hub SIGKILL, GPU hours, Prometheus, the page.

This machine has no GPU: the GPU profile holds a configured device id with
``gpu_request = "environment"`` (as tests/profiles/test_gpus.py does), so the hub's
GPU bookkeeping and the records are real while the container sees no device.
"""

from __future__ import annotations

import json
import secrets
import signal
import time

import pytest

from labhub.cli.main import main
from labhub.usage.store import LabRecord, UsageStore

from ..conftest import lab_spawner_config, unavailable
from ..support.browser import Browser
from ..support.gateway import run_code
from ..support.hubconfig import PASSWORD, configured_config
from ..support.prometheus import Prometheus, prometheus_binary
from ..support.waiting import wait_until

#: A cell that burns five CPU-seconds of its own process, and says how many it burnt.
BURN = (
    "import time\n"
    "t = time.process_time()\n"
    "while time.process_time() - t < 5.0:\n"
    "    pass\n"
    "print(round(time.process_time() - t, 3))\n"
)


def only_record(path: str, user: str) -> LabRecord:
    (record,) = UsageStore(path).records(user=user)
    return record


def start_kernel(hub, user: str) -> str:
    """A Python kernel in ``user``'s lab; returns its websocket URL through the proxy."""
    r = hub.user_request(user, "POST", "/api/kernels", json={"name": "python3"}, timeout=120)
    assert r.status_code == 201, r.text
    return f"ws://127.0.0.1:{hub.port}/user/{user}/api/kernels/{r.json()['id']}/channels"


def steady_cpu(path: str, user: str) -> float:
    """The lab's recorded CPU-seconds once two readings in a row agree (the lab is idle)."""
    seen: list[tuple[float, float]] = []

    def steady() -> float | None:
        record = only_record(path, user)
        if record.cpu_seconds is None or (seen and seen[-1][0] == record.sampled):
            return None
        seen.append((record.sampled, record.cpu_seconds))
        if len(seen) >= 2 and abs(seen[-1][1] - seen[-2][1]) < 0.05:
            return seen[-1][1]
        return None

    return wait_until(steady, 60, 0.3, what="an idle lab's CPU readings to settle")


@pytest.mark.docker
@pytest.mark.reliability
@pytest.mark.slow
def test_cpu_seconds_gpu_hours_and_a_hub_sigkill(
    hub_factory, lab_image, lab_root, lab_prefix, tmp_path, capsys
):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    records = str(data_dir / "labhub-usage.sqlite")
    config = lab_spawner_config(
        lab_image,
        lab_root,
        lab_prefix,
        f"""
        c.JupyterHub.cleanup_servers = False
        c.Spawner.poll_interval = 2
        c.LabDockerSpawner.usage_records_file = {records!r}
        c.LabDockerSpawner.usage_sample_interval = 1
        c.LabDockerSpawner.gpu_devices = ["0"]
        c.LabDockerSpawner.gpu_request = "environment"
        c.LabDockerSpawner.profile_list = [{{"display_name": "One GPU", "slug": "gpu", "gpus": 1}}]
        """,
    )
    hub = hub_factory(config)
    hub.spawn("ann", {"profile": "gpu"})
    ws_url = start_kernel(hub, "ann")
    headers = {"Authorization": f"token {hub.token}"}
    assert run_code(ws_url, headers, "print('ready')").strip() == "ready"

    before = steady_cpu(records, "ann")
    burnt = float(run_code(ws_url, headers, BURN, timeout=120).strip())
    print(f"\ncell burnt {burnt} CPU-s; lab recorded {before:.2f} CPU-s before it")
    # the running lab's reading, every second here (usage_sample_interval)
    wait_until(
        lambda: (only_record(records, "ann").cpu_seconds or 0) >= before + 4.5,
        30,
        what="a reading of the running lab with the cell's CPU time",
    )

    hub.stop(sig=signal.SIGKILL)  # a crash: nothing gets to write anything now
    crashed = only_record(records, "ann")
    print(f"after SIGKILL: {crashed.cpu_seconds:.2f} CPU-s recorded, stopped={crashed.stopped}")
    assert crashed.stopped is None and crashed.cpu_seconds >= before + 4.5

    restarted_at = time.time()
    hub.start()
    assert hub.server_model("ann")["ready"]
    wait_until(
        lambda: (only_record(records, "ann").sampled or 0) > restarted_at,
        30,
        what="the restarted hub sampling the lab it found running",
    )
    hub.stop_server("ann")
    record = wait_until(
        lambda: (r := only_record(records, "ann")).stopped and r, 30, what="the record closed"
    )
    used = record.cpu_seconds - before
    print(
        f"recorded for the cell: {used:.2f} CPU-s (burnt {burnt}); peak memory "
        f"{record.peak_memory_bytes} B; stop reason {record.stop_reason!r}"
    )
    assert 4.5 <= used <= 6.0
    assert record.peak_memory_bytes and record.peak_memory_bytes > 10 * 1024**2
    assert record.stop_reason == "admin"  # the tests' service, not the user or a culler
    assert (record.profile, record.gpus, record.gpu_count, record.warm) == ("gpu", ("0",), 1, False)

    # the report, read from the file with no hub
    with capsys.disabled():
        print(capsys.readouterr().out, end="")  # the figures above, shown with -s
    assert main(["report", "--data-dir", str(data_dir), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["key"] == "ann" and row["labs"] == 1
    assert row["cpu_seconds"] == record.cpu_seconds
    hours = (record.stopped - record.started) / 3600
    assert row["lab_hours"] == pytest.approx(hours) and row["gpu_hours"] == pytest.approx(hours)
    png = tmp_path / "usage.png"
    assert main(["report", "--data-dir", str(data_dir), "--by", "profile", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("gpu ") and png.stat().st_size > 10_000


@pytest.fixture
def prometheus_token():
    if prometheus_binary() is None:
        unavailable("prometheus is not installed (apt-get install prometheus)")
    return secrets.token_hex(16)


@pytest.mark.docker
@pytest.mark.security
@pytest.mark.slow
def test_prometheus_scrapes_the_metrics_and_users_see_only_their_own_usage(
    hub_factory, lab_image, lab_root, lab_prefix, tmp_path, prometheus_token
):
    records = str(tmp_path / "labhub-usage.sqlite")
    config = configured_config(
        lab_image,
        lab_root,
        lab_prefix,
        before=f"c.LabDockerSpawner.usage_records_file = {records!r}",
        after=f"""
        c.LabDockerSpawner.usage_sample_interval = 1
        c.LabDockerSpawner.folder_size_interval = 1
        c.LabDockerSpawner.gpu_devices = ["0", "1"]
        c.LabDockerSpawner.gpu_request = "environment"
        c.LabDockerSpawner.profile_list = [
            {{"display_name": "CPU", "slug": "cpu", "default": True}},
            {{"display_name": "One GPU", "slug": "gpu", "gpus": 1}},
        ]
        c.JupyterHub.services.append({{"name": "prometheus", "api_token": {prometheus_token!r}}})
        c.JupyterHub.load_roles.append(
            {{"name": "metrics", "scopes": ["read:metrics"], "services": ["prometheus"]}}
        )
        """,
        admin_users=["boss"],
        personal_folder_soft_limit="1M",
    )
    hub = hub_factory(config)
    hub.spawn("ann", {"profile": "gpu"})
    hub.spawn("ben", {"profile": "cpu"})
    (lab_root / "personal_notebooks" / "ann" / "big.bin").write_bytes(b"x" * 3 * 1024**2)

    prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{hub.port}", prometheus_token)
    prometheus.start()
    try:
        expected = {
            'up{job="labhub"}': 1,
            'labhub_labs_running{profile="gpu"}': 1,
            'labhub_labs_running{profile="cpu"}': 1,
            "labhub_gpus_held": 1,
            "labhub_gpus_free": 1,
            "labhub_warm_pool_size": 0,
            "labhub_warm_pool_free": 0,
            'labhub_spawn_duration_seconds_count{start="cold"}': 2,
            "labhub_folder_preparation_seconds_count": 2,
        }

        def scraped() -> dict | None:
            got = {query: prometheus.value(query) for query in expected}
            return got if got == expected else None

        wait_until(scraped, 60, 0.5, what=lambda: f"Prometheus to answer {expected}")
        ann_bytes = wait_until(
            lambda: prometheus.value('labhub_personal_folder_bytes{user="ann"}'), 30
        )
        spawn_p50 = prometheus.value(
            'histogram_quantile(0.5, labhub_spawn_duration_seconds_bucket{start="cold"})'
        )
        print(f"\nPrometheus: ann's folder {ann_bytes:.0f} B, cold spawn p50 {spawn_p50:.1f} s")
        assert ann_bytes >= 3 * 1024**2
        assert prometheus.value("labhub_personal_folder_soft_limit_bytes") == 1024**2
    finally:
        prometheus.stop()

    # each user sees their own usage, and no one else's
    ann = Browser(hub.url)
    assert ann.login("ann", PASSWORD).status_code == 302
    page = ann.session.get(f"{hub.url}/hub/usage", timeout=30)
    assert page.status_code == 200 and "Usage of ann since" in page.text
    assert (
        'id="labhub-usage-notice"' in page.text
        and "more than the lab&#39;s soft limit" in page.text
    )
    assert "of a soft limit of 1.0 MiB" in page.text
    assert "labhub-usage-everyone" not in page.text and 'data-user="ben"' not in page.text
    assert ann.session.get(f"{hub.url}/hub/usage?user=ben", timeout=30).status_code == 403
    home = ann.session.get(f"{hub.url}/hub/home", timeout=30).text
    assert 'href="/hub/usage"' in home and 'id="labhub-folder-notice"' in home

    ben = Browser(hub.url)
    assert ben.login("ben", PASSWORD).status_code == 302
    page = ben.session.get(f"{hub.url}/hub/usage", timeout=30).text
    assert "Usage of ben since" in page and "Usage of ann" not in page
    assert 'data-user="ann"' not in page and "labhub-usage-everyone" not in page
    assert "labhub-usage-notice" not in page and "labhub-folder-notice" not in page

    boss = Browser(hub.url)
    assert boss.login("boss", PASSWORD).status_code == 302
    page = boss.session.get(f"{hub.url}/hub/usage", timeout=30).text
    assert 'data-user="ann"' in page and 'data-user="ben"' in page
    other = boss.session.get(f"{hub.url}/hub/usage?user=ann", timeout=30)
    assert other.status_code == 200 and "Usage of ann since" in other.text


@pytest.mark.docker
@pytest.mark.swarm
def test_a_swarm_lab_has_times_and_the_accounting_this_engine_sees(
    swarm, hub_factory, lab_image, lab_root, lab_prefix, tmp_path
):
    """On a one-node swarm the hub's engine runs the task: CPU and memory are read as on Docker."""
    lab_root.mkdir()  # the shared storage every node has; the folder task makes the rest
    records = str(tmp_path / "labhub-usage.sqlite")
    extra = f"""
    c.LabSwarmSpawner.placement_constraints = ["node.role == manager"]
    c.LabSwarmSpawner.usage_records_file = {records!r}
    c.LabSwarmSpawner.usage_sample_interval = 1
    """
    config = lab_spawner_config(lab_image, lab_root, lab_prefix, extra).replace(
        "LabDockerSpawner", "LabSwarmSpawner"
    )
    hub = hub_factory(config)
    hub.spawn("alice")
    wait_until(
        lambda: only_record(records, "alice").cpu_seconds,
        30,
        what="a reading of the swarm task's container",
    )
    hub.stop_server("alice")
    record = wait_until(
        lambda: (r := only_record(records, "alice")).stopped and r, 30, what="the record closed"
    )
    print(f"\nswarm lab: {record.cpu_seconds:.2f} CPU-s, peak {record.peak_memory_bytes} B")
    assert record.engine == "swarm" and record.stop_reason == "admin"
    assert record.stopped > record.started and record.cpu_seconds > 0
    assert record.peak_memory_bytes > 10 * 1024**2


@pytest.mark.docker
@pytest.mark.reliability
def test_a_hub_with_a_corrupt_records_file_starts_keeps_it_and_records_anew(
    hub_factory, lab_image, lab_root, lab_prefix, tmp_path
):
    records = tmp_path / "labhub-usage.sqlite"
    records.write_bytes(b"SQLite format 3\x00" + b"\xfe" * 8192)
    damaged = records.read_bytes()
    config = configured_config(
        lab_image,
        lab_root,
        lab_prefix,
        before=f"c.LabDockerSpawner.usage_records_file = {str(records)!r}",
    )
    hub = hub_factory(config)  # answers its API: it started
    (kept,) = wait_until(lambda: list(tmp_path.glob("labhub-usage.sqlite.unreadable-*")), 30)
    assert kept.read_bytes() == damaged
    said = [line for line in hub.log_text().splitlines() if "labhub: usage records" in line]
    print(f"\n{said[0]}")
    assert len(said) == 1 and said[0].endswith(f"kept it as {kept} and started a new file.")
    assert UsageStore(str(records)).records() == []  # the new file is a records file
