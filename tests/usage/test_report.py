"""labhub report: sums by user, group, profile and image, its three formats, the plot, and no records."""

from __future__ import annotations

import json
import time

import pytest

from labhub.cli.main import main
from labhub.usage import report
from labhub.usage.store import LabRecord, UsageStore, records_path

DAY = 86400.0
NOW = 1_780_000_000.0 - 1_780_000_000.0 % DAY + 12 * 3600  # noon UTC


def lab(key, user, hours, ago_days=1.0, now=NOW, **fields) -> LabRecord:
    started = now - ago_days * DAY
    values = {"stopped": started + hours * 3600, "stop_reason": "logout"}
    return LabRecord(key=key, user=user, started=started, **{**values, **fields})


RECORDS = [
    lab(
        "a1",
        "ann",
        2,
        groups=("physics",),
        profile="gpu",
        image="ds:1",
        gpu_count=1,
        cpu_seconds=1800.5,
        peak_memory_bytes=2 * 1024**3,
        warm=True,
    ),
    lab("a2", "ann", 1, ago_days=2, groups=("physics",), image="ds:1", cpu_seconds=None),
    lab(
        "b1",
        "ben",
        3,
        groups=("physics", "chemistry"),
        image="ds:2",
        cpu_seconds=7200.25,
        peak_memory_bytes=1024**3,
    ),
    lab("c1", "cy", 1, ago_days=40, image="ds:1", cpu_seconds=1.0, peak_memory_bytes=1),
]


def test_sums_by_user_leave_unknown_cpu_out_and_count_it():
    rows = {r.key: r for r in report.summarise(RECORDS, "user", NOW - 30 * DAY, NOW)}
    assert set(rows) == {"ann", "ben"}  # cy's lab was before the window
    ann = rows["ann"]
    assert (ann.labs, ann.lab_hours, ann.cpu_seconds, ann.unknown) == (2, 3.0, 1800.5, 1)
    assert ann.gpu_hours == 2.0 and ann.warm_share == 0.5
    assert ann.peak_memory_bytes == 2 * 1024**3
    assert rows["ben"].cpu_seconds == 7200.25 and rows["ben"].gpu_hours == 0


def test_by_group_profile_and_image():
    since = NOW - 30 * DAY
    groups = {r.key: r.lab_hours for r in report.summarise(RECORDS, "group", since, NOW)}
    assert groups == {"physics": 6.0, "chemistry": 3.0}  # ben's lab counts in both his groups
    profiles = {r.key: r.labs for r in report.summarise(RECORDS, "profile", since, NOW)}
    assert profiles == {"gpu": 1, report.NO_PROFILE: 2}
    images = {r.key: r.lab_hours for r in report.summarise(RECORDS, "image", since, NOW)}
    assert images == {"ds:1": 3.0, "ds:2": 3.0}


def test_a_lab_across_the_window_counts_its_share():
    straddling = lab("s", "ann", 10, ago_days=1, cpu_seconds=1000.0)
    since = straddling.started + 5 * 3600  # half of it inside
    (row,) = report.summarise([straddling], "user", since, NOW)
    assert row.lab_hours == pytest.approx(5.0) and row.cpu_seconds == pytest.approx(500.0)


def test_a_running_lab_counts_until_now():
    running = LabRecord(key="r", user="ann", started=NOW - 1800, cpu_seconds=60.0)
    (row,) = report.summarise([running], "user", NOW - DAY, NOW)
    assert row.lab_hours == pytest.approx(0.5)


def test_hours_per_group_per_day_split_at_midnight():
    midnight = NOW - 12 * 3600
    overnight = LabRecord(
        key="o", user="ann", started=midnight - 3600, stopped=midnight + 7200, groups=("physics",)
    )
    days = report.hours_per_day([overnight], NOW - 2 * DAY, NOW)
    assert list(days["physics"].values()) == [1.0, 2.0]


def write_records(data_dir, records) -> str:
    store = UsageStore(records_path(str(data_dir)))
    for r in records:
        store.add(r)
    return str(data_dir)


def test_the_command_in_three_formats_and_a_plot(tmp_path, capsys):
    data_dir = write_records(
        tmp_path,
        [
            lab(
                "x",
                "ann",
                2,
                ago_days=0.2,
                now=time.time(),
                groups=("physics",),
                cpu_seconds=1234.5678,
                peak_memory_bytes=10**9,
                gpu_count=2,
            ),
        ],
    )
    assert main(["report", "--data-dir", data_dir]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["user", "lab", "hours"]
    assert "ann" in table and "4.00" in table  # two GPUs for two hours

    assert main(["report", "--data-dir", data_dir, "--by", "group", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("group,lab_hours,cpu_hours,peak_memory_bytes,gpu_hours")
    assert lines[1].startswith("physics,2.0000,0.3429,1000000000,4.0000,1,")

    assert main(["report", "--data-dir", data_dir, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["cpu_seconds"] == 1234.5678  # seconds, unrounded

    png = tmp_path / "usage.png"
    assert main(["report", "--data-dir", data_dir, "--since", "7d", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_the_plot_stands_alone(tmp_path):
    """Its title, axes and legend say what it shows (read back from the figure matplotlib drew)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = []
    real_savefig = plt.Figure.savefig

    def keep(figure, *args, **kwargs):
        drawn.append(figure)
        return real_savefig(figure, *args, **kwargs)

    pytest.MonkeyPatch().setattr(plt.Figure, "savefig", keep)
    report.plot(RECORDS, NOW - 7 * DAY, NOW, str(tmp_path / "p.png"))
    (axes,) = drawn[0].axes
    assert axes.get_title().startswith("Lab hours per group per day")
    assert axes.get_ylabel() == "lab hours" and axes.get_xlabel() == "day (UTC)"
    labels = [t.get_text() for t in axes.get_legend().get_texts()]
    assert labels == ["physics (6.0 h)", "chemistry (3.0 h)"]


def test_missing_or_empty_records_say_so_in_one_sentence(tmp_path, capsys):
    assert main(["report", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"No usage records at {tmp_path}/labhub-usage.sqlite: the file does not")
    assert out.count(". ") == 0 and not (tmp_path / "labhub-usage.sqlite").exists()

    UsageStore(records_path(str(tmp_path)))
    assert main(["report", "--data-dir", str(tmp_path), "--since", "2d"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.endswith("no lab ran in that time.") and out.count("\n") == 0


def test_bad_options_are_one_sentence(tmp_path, capsys):
    assert main(["report", "--data-dir", str(tmp_path), "--since", "last week"]) == 1
    assert capsys.readouterr().err.startswith("labhub: --since must be a span such as 30d")
    (tmp_path / "labhub-usage.sqlite").write_bytes(b"not a database at all" * 100)
    assert main(["report", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("labhub: The usage records cannot be read:") and err.count("\n") == 1


def test_the_default_data_dir_is_labhub_data_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABHUB_DATA_DIR", str(tmp_path))
    write_records(tmp_path, [lab("x", "dora", 1, ago_days=0.5, now=time.time())])
    assert main(["report"]) == 0
    assert "dora" in capsys.readouterr().out


def test_since_as_a_span_or_a_utc_date():
    assert report.parse_since("30d", NOW) == NOW - 30 * DAY
    assert report.parse_since("12h", NOW) == NOW - 12 * 3600
    assert report.parse_since("2026-11-01", NOW) == 1_793_491_200.0  # midnight UTC


def test_the_usage_page_counts_from_the_first_of_the_month_utc():
    from labhub.usage.page import month_start

    assert month_start(1_795_982_092.0) == 1_793_491_200.0  # 2026-11-29 -> 2026-11-01 00:00 UTC
