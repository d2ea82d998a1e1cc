"""The records file: written and read back, upgraded, and an unreadable or newer one kept aside."""

from __future__ import annotations

import sqlite3

import pytest

from labhub.usage import store
from labhub.usage.store import LabRecord, RecordsUnreadable, Sample, UsageStore, open_for_hub


def record(key: str = "k1", **fields) -> LabRecord:
    values = {"user": "ann", "started": 1000.0, "groups": ("physics",), "gpus": ("0",)}
    return LabRecord(key=key, **{**values, **fields})


def test_a_record_is_written_sampled_and_closed_once(tmp_path):
    s = UsageStore(str(tmp_path / "u.sqlite"))
    s.add(record())
    s.sample("k1", Sample(cpu_seconds=3.5, peak_memory_bytes=100, at=1100.0))
    s.sample("k1", Sample(cpu_seconds=None, peak_memory_bytes=50, at=1200.0))
    (running,) = s.open_records()
    # an unreadable value keeps the last known one; the peak never goes down
    assert (running.cpu_seconds, running.peak_memory_bytes, running.sampled) == (3.5, 100, 1200.0)
    assert s.stop("k1", "cull", 1300.0, Sample(cpu_seconds=4.0, at=1300.0))
    assert not s.stop("k1", "died", 1400.0)  # a second close changes nothing
    (closed,) = s.records()
    assert (closed.stopped, closed.stop_reason, closed.cpu_seconds) == (1300.0, "cull", 4.0)
    assert closed.groups == ("physics",) and closed.gpus == ("0",)
    assert s.open_records() == []


def test_unknown_accounting_stays_null_never_zero(tmp_path):
    s = UsageStore(str(tmp_path / "u.sqlite"))
    s.add(record())
    s.stop("k1", "died", 2000.0, Sample(at=2000.0))
    (closed,) = s.records()
    assert closed.cpu_seconds is None and closed.peak_memory_bytes is None


def test_records_survive_reopening_and_only_the_hub_reads_them(tmp_path):
    path = str(tmp_path / "u.sqlite")
    UsageStore(path).add(record())
    assert (tmp_path / "u.sqlite").stat().st_mode & 0o777 == 0o600
    assert [r.key for r in UsageStore(path).open_records()] == ["k1"]


def test_an_older_schema_is_upgraded_in_place(tmp_path, monkeypatch):
    path = str(tmp_path / "u.sqlite")
    UsageStore(path).add(record())
    monkeypatch.setattr(store, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(store, "MIGRATIONS", {1: ("ALTER TABLE labs ADD COLUMN note TEXT",)})
    upgraded = UsageStore(path)
    assert [r.key for r in upgraded.records()] == ["k1"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM labhub_usage_version").fetchone() == (2,)
        assert "note" in [row[1] for row in conn.execute("PRAGMA table_info(labs)")]


@pytest.mark.reliability
@pytest.mark.parametrize("damage", ["corrupt", "newer"])
def test_an_unreadable_file_is_kept_and_a_new_one_started(tmp_path, damage):
    path = tmp_path / "u.sqlite"
    if damage == "corrupt":
        path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    else:
        UsageStore(str(path)).add(record())
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE labhub_usage_version SET version = 99")
    before = path.read_bytes()
    said = []
    fresh = open_for_hub(str(path), said.append)
    fresh.add(record("k2"))
    (kept,) = tmp_path.glob("u.sqlite.unreadable-*")
    print(f"\n{damage}: {said[0]}")
    assert len(said) == 1 and said[0].startswith("labhub: usage records ")
    assert said[0].endswith(f"kept it as {kept} and started a new file.")
    assert kept.read_bytes() == before
    assert [r.key for r in UsageStore(str(path)).records()] == ["k2"]
    if damage == "newer":
        assert "written by a newer labhub (schema 99, this one reads 1)" in said[0]


def test_another_sqlite_file_is_not_taken_for_records(tmp_path):
    path = tmp_path / "u.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(RecordsUnreadable) as err:
        UsageStore(str(path))
    assert "is not a labhub usage records file" in str(err.value)


def test_a_report_never_creates_the_file(tmp_path):
    assert store.read_only(str(tmp_path / "missing.sqlite")) is None
    assert not (tmp_path / "missing.sqlite").exists()
