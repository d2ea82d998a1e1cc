"""``labhub report``: the usage records summed by user, group, profile or image; pure but for the plot.

A lab that began before ``--since`` counts with the part of its time after it, and
its CPU time in the same share (the records hold a lab's CPU total, not when it was
spent). GPU hours are a lab's hours times the GPUs it held. Unknown CPU or memory
(a lab whose accounting the engine could not show) is left out of the sums and
counted in ``unknown``, never added as zero.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from labhub.usage.sizes import human_size
from labhub.usage.store import LabRecord

BY = ("user", "group", "profile", "image")
FORMATS = ("table", "csv", "json")
NO_GROUP = "(no group)"
NO_PROFILE = "(default)"
DAY = 86400.0

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hdw])\s*$")
_UNIT_SECONDS = {"h": 3600, "d": DAY, "w": 7 * DAY}


class ReportError(ValueError):
    """A report option is wrong; the message is one sentence."""


def parse_since(text: str, now: float) -> float:
    """The epoch time ``text`` (``30d``, ``12h``, ``2w`` or a date ``2026-11-01``) stands for."""
    found = _SINCE.match(text)
    if found:
        return now - float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    try:
        return float(calendar.timegm(time.strptime(text.strip(), "%Y-%m-%d")))
    except ValueError:
        raise ReportError(
            f"--since must be a span such as 30d, 12h or 2w, or a date such as 2026-11-01, "
            f"not {text!r}."
        ) from None


@dataclass(frozen=True)
class Row:
    """One line of the report."""

    key: str
    labs: int
    lab_hours: float
    cpu_seconds: float
    peak_memory_bytes: int | None
    gpu_hours: float
    warm_share: float
    unknown: int

    @property
    def cpu_hours(self) -> float:
        return self.cpu_seconds / 3600


def _span(record: LabRecord, since: float, now: float) -> tuple[float, float, float]:
    """The part of the lab inside [since, now]: its start, end and share of the lab's whole time."""
    end = record.stopped if record.stopped is not None else now
    begin = max(record.started, since)
    whole = max(end - record.started, 1e-9)
    inside = max(end - begin, 0.0)
    return begin, end, min(1.0, inside / whole)


def _keys(record: LabRecord, by: str) -> list[str]:
    if by == "user":
        return [record.user]
    if by == "group":
        return list(record.groups) or [NO_GROUP]
    if by == "profile":
        return [record.profile or NO_PROFILE]
    return [record.image]


def summarise(records: Iterable[LabRecord], by: str, since: float, now: float) -> list[Row]:
    """One row per user, group, profile or image, with the largest lab hours first."""
    if by not in BY:
        raise ReportError(f"--by must be {', '.join(BY[:-1])} or {BY[-1]}, not {by!r}.")
    sums: dict[str, dict] = defaultdict(
        lambda: {"labs": 0, "hours": 0.0, "cpu": 0.0, "peak": None, "gpu": 0.0, "warm": 0, "unk": 0}
    )
    for record in records:
        begin, end, share = _span(record, since, now)
        if end < since:
            continue
        hours = (end - begin) / 3600
        for key in _keys(record, by):
            s = sums[key]
            s["labs"] += 1
            s["hours"] += hours
            s["gpu"] += hours * record.gpu_count
            s["warm"] += int(record.warm)
            if record.cpu_seconds is None or record.peak_memory_bytes is None:
                s["unk"] += 1
            if record.cpu_seconds is not None:
                s["cpu"] += record.cpu_seconds * share
            if record.peak_memory_bytes is not None:
                s["peak"] = max(s["peak"] or 0, record.peak_memory_bytes)
    rows = [
        Row(
            key=key,
            labs=s["labs"],
            lab_hours=s["hours"],
            cpu_seconds=s["cpu"],
            peak_memory_bytes=s["peak"],
            gpu_hours=s["gpu"],
            warm_share=s["warm"] / s["labs"],
            unknown=s["unk"],
        )
        for key, s in sums.items()
    ]
    return sorted(rows, key=lambda r: (-r.lab_hours, r.key))


HEADERS = ("lab hours", "CPU hours", "peak memory", "GPU hours", "labs", "warm starts")


def as_table(rows: list[Row], by: str) -> str:
    """Aligned text for a terminal; unknown accounting is noted after the numbers."""
    lines = [(by, *HEADERS)]
    for r in rows:
        cpu = f"{r.cpu_hours:.2f}" + (f" ({r.unknown} unknown)" if r.unknown else "")
        lines.append(
            (
                r.key,
                f"{r.lab_hours:.2f}",
                cpu,
                human_size(r.peak_memory_bytes),
                f"{r.gpu_hours:.2f}",
                str(r.labs),
                f"{r.warm_share:.0%}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def as_csv(rows: list[Row], by: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            by,
            "lab_hours",
            "cpu_hours",
            "peak_memory_bytes",
            "gpu_hours",
            "labs",
            "warm_share",
            "unknown",
        ]
    )
    for r in rows:
        writer.writerow(
            [
                r.key,
                f"{r.lab_hours:.4f}",
                f"{r.cpu_hours:.4f}",
                "" if r.peak_memory_bytes is None else r.peak_memory_bytes,
                f"{r.gpu_hours:.4f}",
                r.labs,
                f"{r.warm_share:.4f}",
                r.unknown,
            ]
        )
    return out.getvalue()


def as_json(rows: list[Row], by: str, since: float, now: float) -> str:
    """JSON with CPU in seconds, unrounded; null where unknown."""
    return json.dumps(
        {"by": by, "since": since, "until": now, "rows": [asdict(r) for r in rows]}, indent=2
    )


def hours_per_day(
    records: Iterable[LabRecord], since: float, now: float
) -> dict[str, dict[str, float]]:
    """Lab hours by group, then by UTC day (``YYYY-MM-DD``), each lab split at midnight."""
    days: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in records:
        begin, end, _ = _span(record, since, now)
        while begin < end:
            midnight = (begin // DAY + 1) * DAY
            part = min(end, midnight) - begin
            day = time.strftime("%Y-%m-%d", time.gmtime(begin))
            for group in _keys(record, "group"):
                days[group][day] += part / 3600
            begin += part
    return {group: dict(by_day) for group, by_day in days.items()}


def plot(records: list[LabRecord], since: float, now: float, path: str) -> None:
    """A stacked bar chart of lab hours per group per day, titled and labelled to stand alone."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError(
            "--plot needs matplotlib: pip install 'jupyterhub-labhub[plot]'."
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_group = hours_per_day(records, since, now)
    day_count = int((now - since) // DAY) + 1
    days = [time.strftime("%Y-%m-%d", time.gmtime(since + i * DAY)) for i in range(day_count)]
    figure, axes = plt.subplots(figsize=(max(7, 0.35 * len(days) + 5), 4.5))
    bottom = [0.0] * len(days)
    for group in sorted(per_group, key=lambda g: -sum(per_group[g].values())):
        heights = [per_group[group].get(day, 0.0) for day in days]
        total = sum(heights)
        axes.bar(days, heights, bottom=bottom, label=f"{group} ({total:.1f} h)")
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.set_title(f"Lab hours per group per day, {days[0]} to {days[-1]} (UTC)")
    axes.set_xlabel("day (UTC)")
    axes.set_ylabel("lab hours")
    # beside the bars, never over them
    axes.legend(title="group (total)", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    axes.tick_params(axis="x", labelrotation=60, labelsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def records_message(path: str, since: float, exists: bool) -> str:
    """The one sentence for a report with nothing to sum."""
    if not exists:
        return (
            f"No usage records at {path}: the file does not exist (a hub writes it when its "
            "first lab starts; use --data-dir for another folder)."
        )
    day = time.strftime("%Y-%m-%d", time.gmtime(since))
    return f"No usage records at {path} since {day}: no lab ran in that time."


def run_report(
    data_dir: str,
    since_text: str = "30d",
    by: str = "user",
    fmt: str = "table",
    plot_path: str = "",
    now: float | None = None,
) -> str:
    """The report's text for ``data_dir``'s records (and the plot, if asked); ReportError on bad input."""
    from labhub.usage.store import RecordsUnreadable, read_only, records_path

    now = time.time() if now is None else now
    since = parse_since(since_text, now)
    if by not in BY:
        raise ReportError(f"--by must be {', '.join(BY[:-1])} or {BY[-1]}, not {by!r}.")
    if fmt not in FORMATS:
        raise ReportError(f"--format must be table, csv or json, not {fmt!r}.")
    path = records_path(data_dir)
    try:
        store = read_only(path)
        records = store.records(since=since) if store is not None else []
    except RecordsUnreadable as err:
        raise ReportError(f"The usage records cannot be read: {err}.") from None
    records = [r for r in records if r.started <= now]
    if not records:
        return records_message(path, since, store is not None)
    rows = summarise(records, by, since, now)
    if plot_path:
        plot(records, since, now, plot_path)
    if fmt == "csv":
        return as_csv(rows, by).rstrip("\n")
    if fmt == "json":
        return as_json(rows, by, since, now)
    return as_table(rows, by)
