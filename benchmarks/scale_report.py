"""The scale benchmark's table, its goals (issue 27) and its plot, from a results dict.

    python3 benchmarks/scale_report.py benchmarks/scale.json --png benchmarks/scale.png \
        --splice benchmarks/RESULTS.md

re-renders a results file without measuring anything.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

#: The goals of issue 27: labs held, /hub/api p99 with all of them running, seconds to all served.
LABS_GOAL = 200
API_P99_GOAL_MS = 100.0
RESTART_GOAL_S = 30.0

API_ROWS = (
    ("root", "`GET /hub/api/`"),
    ("user", "`GET /hub/api/users/NAME` (one user's model, cycling over every lab's user)"),
    ("list", "`GET /hub/api/users?state=active` (every running lab in one answer)"),
)


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _num(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def goals(results: dict) -> list[str]:
    """One line per goal of issue 27, met or not, with the figure that decides it."""
    spawn = results.get("spawn", {})
    held, target = spawn.get("held", 0), results.get("labs", 0)
    lines = [
        f"- hold {LABS_GOAL} labs: {_met(held >= LABS_GOAL)} ({held} of {target} asked for held"
        + (", stopped adding at the memory floor" if spawn.get("stopped_by_memory") else "")
        + (", stopped adding at the time budget" if spawn.get("stopped_by_time") else "")
        + (f", {len(spawn['failed'])} failed to start" if spawn.get("failed") else "")
        + ")"
    ]
    user = results.get("api", {}).get("user", {})
    p99 = user.get("p99")
    lines.append(
        f"- `/hub/api` p99 under {API_P99_GOAL_MS:.0f} ms with {held} running: "
        f"{_met(p99 is not None and p99 < API_P99_GOAL_MS and not user.get('errors'))} "
        f"({_num(p99)} ms over {user.get('requests', 0)} requests for one user's model)"
    )
    restart = results.get("restart", {})
    back = restart.get("all_served_s")
    lost = len(restart.get("lost", [])) if restart else None
    lines.append(
        f"- all {held} back within {RESTART_GOAL_S:.0f} s of a hub SIGKILL and restart: "
        f"{_met(back is not None and back <= RESTART_GOAL_S and lost == 0)} "
        f"({_num(back)} s, {lost if lost is not None else 'n/a'} lost)"
    )
    if held < LABS_GOAL:
        lines.append(f"  (the last two goals are judged with {held} labs running, not {LABS_GOAL})")
    return lines


def table(results: dict) -> str:
    """The scale benchmark as Markdown: what was held, memory, the API, restart, culler, goals."""
    spawn = results.get("spawn", {})
    held = spawn.get("held", 0)
    mem = results.get("memory", {})
    machine = results.get("machine", {})
    load = results.get("load_before")
    lines = [
        f"### Scale on one host: {held} idle labs through one hub",
        "",
        f"`run.py scale --labs {results.get('labs')}`, {results.get('started', '?')} UTC, "
        f"{_num(results.get('seconds'), 0)} s in all; {machine.get('cpus', '?')} CPUs, "
        f"{machine.get('memory_gb', '?')} GiB; load average (1 min) "
        f"{load[0] if load else '?'} before the run.",
        "",
        _row(["what", "figure"]),
        _row(["---", "---"]),
        _row(
            [
                "labs asked for / held / failed",
                f"{results.get('labs')} / {held} / {len(spawn.get('failed', {}))}",
            ]
        ),
        _row(
            [
                "stopped adding labs early",
                "at the memory floor"
                if spawn.get("stopped_by_memory")
                else "at the time budget"
                if spawn.get("stopped_by_time")
                else "no",
            ]
        ),
        _row(["memory floor (MemAvailable, GiB)", results.get("min_available_gib")]),
        _row(
            [
                f"time to start them all, {results.get('concurrency')} at a time (s)",
                _num(spawn.get("seconds")),
            ]
        ),
        _row(
            [
                "one lab's start, request to ready, median / max (s)",
                f"{_num(spawn.get('spawn_seconds', {}).get('median'), 2)} / "
                f"{_num(spawn.get('spawn_seconds', {}).get('max'), 2)}",
            ]
        ),
    ]
    if mem:
        ws, usage, anon = mem["working_set_mib"], mem["usage_mib"], mem["anon_mib"]
        lines += [
            _row(
                [
                    "idle lab, cgroup memory less inactive page cache (`docker stats`), "
                    "median / max (MiB)",
                    f"{_num(ws.get('median'), 0)} / {_num(ws.get('max'), 0)}",
                ]
            ),
            _row(
                [
                    "idle lab, cgroup memory charged in all (page cache too), median (MiB)",
                    _num(usage.get("median"), 0),
                ]
            ),
            _row(
                [
                    "idle lab, anonymous memory (the processes' own), median (MiB)",
                    _num(anon.get("median"), 0),
                ]
            ),
            _row(
                [
                    "host MemAvailable before / with all labs (GiB)",
                    f"{_num(mem['mem_available_before_gib'])} / "
                    f"{_num(mem['mem_available_after_gib'])}",
                ]
            ),
            _row(
                [
                    "host memory per lab, from MemAvailable (MiB)",
                    _num(mem.get("host_per_lab_mib"), 0),
                ]
            ),
            _row(
                [
                    "hub RSS / proxy RSS with all labs (MB)",
                    f"{_num(mem.get('hub_rss_mb'), 0)} / {_num(mem.get('proxy_rss_mb'), 0)}",
                ]
            ),
        ]
    routes = results.get("routes")
    if routes:
        lines.append(_row(["proxy routes (to labs)", f"{routes['all']} ({routes['users']})"]))
    lines += ["", f"`/hub/api` with {held} labs running, requests one after another:", ""]
    lines += [
        _row(["request", "n", "p50 (ms)", "p99 (ms)", "max (ms)", "errors"]),
        _row(["---"] * 6),
    ]
    for key, label in API_ROWS:
        r = results.get("api", {}).get(key)
        if r:
            lines.append(
                _row(
                    [
                        label,
                        r["requests"],
                        _num(r["p50"]),
                        _num(r["p99"]),
                        _num(r["max"]),
                        r["errors"],
                    ]
                )
            )
    restart = results.get("restart")
    if restart:
        lines += [
            "",
            f"Hub SIGKILLed with {restart['labs']} labs running, then started again "
            "(seconds from the start command):",
            "",
            _row(["what", "figure"]),
            _row(["---", "---"]),
            _row(["hub answers `/hub/api`", _num(restart["hub_answers_s"])]),
            _row(["hub lists every lab ready", _num(restart["hub_lists_all_ready_s"])]),
            _row(
                [
                    "every lab answers through the proxy, its token checked by the new hub",
                    _num(restart["all_served_s"]),
                ]
            ),
            _row(
                [
                    f"longest time `{restart.get('probe_lab', '')}`'s `/api` (no token) did not "
                    "answer through the proxy, probed every 0.1 s from the kill",
                    _num(restart.get("longest_gap_s")),
                ]
            ),
            _row(
                [
                    "labs lost / containers replaced",
                    f"{len(restart['lost'])} / {len(restart['replaced_containers'])}",
                ]
            ),
            _row(
                [
                    "proxy routes after (to labs)",
                    f"{restart['routes']['all']} ({restart['routes']['users']})",
                ]
            ),
        ]
    cull = results.get("cull")
    if cull:
        lines += [
            "",
            f"The idle culler (`idle_timeout = {cull['idle_timeout']}`, as configure() runs it) "
            f"stopping {cull['labs']} labs at once (seconds from the hub's start):",
            "",
            _row(["what", "figure"]),
            _row(["---", "---"]),
            _row(["first lab stopped", _num(cull["first_stop_s"])]),
            _row(["every server and container gone", _num(cull["all_gone_s"])]),
            _row(["from the first stop to the last", _num(cull["culling_s"])]),
            _row(
                [
                    "labs stopped, and per minute once stopping began",
                    f"{cull.get('stopped', 'n/a')}, {_num(cull.get('stopped_per_minute'))}",
                ]
            ),
            _row(
                ["servers / containers left", f"{cull['servers_left']} / {cull['containers_left']}"]
            ),
            _row(["error lines in the hub's and the culler's log", cull["error_count"]]),
        ]
    lines += ["", "#### Goals (issue 27)", "", *goals(results)]
    return "\n".join(lines)


#: RESULTS.md holds the published table between these two lines.
BEGIN, END = "<!-- scale table: begin -->", "<!-- scale table: end -->"


def splice(markdown: str, table_text: str) -> str:
    """``markdown`` with the text between :data:`BEGIN` and :data:`END` replaced by ``table_text``."""
    head, found, rest = markdown.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"the results file has no {BEGIN} ... {END} section")
    return f"{head}{BEGIN}\n{table_text}\n{END}{tail}"


def plot(results: dict, path: Path) -> None:
    """Three panels: labs held and MemAvailable while starting, labs back after the kill, the cull."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    spawn = results.get("spawn", {})
    curve = spawn.get("curve", [])
    ax = axes[0]
    if curve:
        t, held, avail = zip(*curve, strict=True)
        ax.step(t, held, where="post", color="tab:blue", label="labs ready")
        ax.set_xlabel("seconds since the first request")
        ax.set_ylabel("labs ready", color="tab:blue")
        twin = ax.twinx()
        twin.plot(t, avail, color="tab:red", label="MemAvailable")
        twin.axhline(results.get("min_available_gib", 3), color="tab:red", ls=":", lw=1)
        twin.set_ylabel("host MemAvailable (GiB)", color="tab:red")
        twin.set_ylim(bottom=0)
    ax.set_title(f"Starting {results.get('labs')} labs, {results.get('concurrency')} at a time")
    ax = axes[1]
    restart = results.get("restart", {})
    if restart.get("curve"):
        t, served = zip(*restart["curve"], strict=True)
        ax.step(t, served, where="post", color="tab:green")
        ax.axvline(
            RESTART_GOAL_S, color="grey", ls="--", lw=1, label=f"goal {RESTART_GOAL_S:.0f} s"
        )
        ax.axvline(restart["hub_answers_s"], color="tab:blue", ls=":", lw=1, label="hub answers")
        for n, (start, end) in enumerate(restart.get("probe_gaps", [])):
            label = "one lab unreachable" if n == 0 else None
            ax.axvspan(start, end, color="tab:red", alpha=0.2, label=label)
        ax.legend(loc="lower right")
    ax.set_xlabel("seconds since the hub was started again")
    ax.set_ylabel("labs answering through the proxy")
    ax.set_title("After a hub SIGKILL")
    ax = axes[2]
    cull = results.get("cull", {})
    if cull.get("curve"):
        t, servers, containers = zip(*cull["curve"], strict=True)
        ax.step(t, servers, where="post", label="servers in the hub")
        ax.step(t, containers, where="post", label="lab containers", ls="--")
        ax.legend(loc="upper right")
    ax.set_xlabel("seconds since the hub started with the culler")
    ax.set_ylabel("labs left")
    ax.set_title(f"The idle culler stopping {cull.get('labs', 0)} labs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", help="a scale.json written by benchmarks/run.py scale")
    parser.add_argument("--png", help="also write the plot here")
    parser.add_argument("--splice", help="also put the table into this RESULTS.md")
    args = parser.parse_args(argv)
    results = json.loads(Path(args.results).read_text())
    text = table(results)
    print(text)
    if args.splice:
        Path(args.splice).write_text(splice(Path(args.splice).read_text(), text))
    if args.png:
        plot(results, Path(args.png))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
