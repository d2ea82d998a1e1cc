"""Turn benchmark results into text tables, the goals of issue 16 and a PNG plot.

    python3 benchmarks/report.py benchmarks/out/results.json --png benchmarks/results.png

re-renders a results file without measuring anything.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

#: Spawn-latency rows: (where in the results, key, label).
SPAWN_ROWS = (
    ("floor", "plain", "`docker run` until `/api`, plain Jupyter image (floor)"),
    ("floor", "lean", "`docker run` until `/api`, labhub image (lean)"),
    ("single", "stock_plain", "stock DockerSpawner, plain image"),
    ("single", "stock_lean", "stock DockerSpawner, labhub image"),
    ("single", "lab_cold", "LabDockerSpawner cold, labhub image"),
    ("single", "lab_warm", "LabDockerSpawner warm, from a full pool"),
    ("single", "lab_cold_default", "LabDockerSpawner cold, configure() defaults (labhub-labs)"),
    ("single", "lab_warm_default", "LabDockerSpawner warm, configure() defaults, pool of 2"),
)
#: Who started which burst.
BURST_LABELS = {
    "stock_plain": "stock DockerSpawner, plain image",
    "stock_lean": "stock DockerSpawner, labhub image",
    "lab_cold": "LabDockerSpawner cold, labhub image",
    "lab_warm": "LabDockerSpawner from a full pool",
    "lab_cold_default": "LabDockerSpawner cold, configure() defaults",
}
SHORT_LABELS = {
    "plain": "floor\nplain",
    "lean": "floor\nlabhub",
    "stock_plain": "stock\nplain",
    "stock_lean": "stock\nlabhub",
    "lab_cold": "labhub\ncold",
    "lab_warm": "labhub\nwarm",
    "lab_cold_default": "defaults\ncold",
    "lab_warm_default": "defaults\nwarm",
}
#: The goals of issue 16: cold and warm medians against the plain floor, the burst against stock.
COLD_GOAL = 0.75
WARM_GOAL = 0.35
BURST_GOAL = 3.0
BURST_GOAL_N = 50


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base or math.isnan(value):
        return ""
    return f"{value / base:.2f}"


def _plain_floor(results: dict) -> float | None:
    return results.get("floor", {}).get("plain", {}).get("median")


def _bursts(results: dict) -> list[dict]:
    return results.get("burst", []) if isinstance(results.get("burst"), list) else []


def _burst_of(results: dict, kind: str, n: int) -> dict | None:
    return next((b for b in _bursts(results) if b["kind"] == kind and b["n"] == n), None)


def spawn_table(results: dict) -> list[str]:
    floor = _plain_floor(results)
    stock = results.get("single", {}).get("stock_plain", {}).get("median")
    pool = results.get("pool", {}).get("size")
    lines = [
        "### Spawn latency (s): `docker run` floors, and request to ready through a hub",
        "",
        _row(["what", "median", "p95", "n", "x plain floor", "x stock"]),
        _row(["---"] * 6),
    ]
    for where, key, label in SPAWN_ROWS:
        s = results.get(where, {}).get(key)
        if not s:
            continue
        if key == "lab_warm" and pool:
            label = f"LabDockerSpawner warm, from a full pool of {pool}"
        lines.append(
            _row(
                [
                    label,
                    f"{s['median']:.2f}",
                    f"{s['p95']:.2f}",
                    str(s["n"]),
                    _ratio(s["median"], floor),
                    _ratio(s["median"], stock),
                ]
            )
        )
    images = results.get("images", {})
    lines += [
        "",
        f"Plain image: `{images.get('plain', '?')}` (labhub's image with rfc3987-syntax back, "
        f"as an ordinary Jupyter install has it); labhub image: `{images.get('lean', '?')}`. "
        "`x stock` is against stock DockerSpawner on the plain image; the stock row on "
        "labhub's image shows what the image alone gives.",
        "",
    ]
    return lines


def burst_table(results: dict) -> list[str]:
    floor = _plain_floor(results)
    lines = [
        "### Burst: N users start at once",
        "",
        _row(
            [
                "spawner",
                "N",
                "all ready (s)",
                "failures",
                "hub RSS (MB)",
                "x plain floor",
                "x stock",
            ]
        ),
        _row(["---"] * 7),
    ]
    for b in _bursts(results):
        stock = _burst_of(results, "stock_plain", b["n"])
        label = BURST_LABELS.get(b["kind"], b["kind"])
        if b["kind"] == "lab_warm" and results.get("pool"):
            label += f" of {results['pool']['size']}"
        if b.get("from_pool") is not None:
            label += f" ({b['from_pool']}/{b['n']} from the pool)"
        lines.append(
            _row(
                [
                    label,
                    str(b["n"]),
                    f"{b['seconds_to_all_ready']:.1f}",
                    str(b["failures"]),
                    f"{b['hub_rss_mb']:.0f}",
                    _ratio(b["seconds_to_all_ready"], floor),
                    _ratio(b["seconds_to_all_ready"], stock and stock["seconds_to_all_ready"]),
                ]
            )
        )
    lines.append("")
    return lines


def memory_table(results: dict) -> list[str]:
    lines = [
        "### Memory",
        "",
        _row(["what", "n", "median (MiB)", "max (MiB)", "total (MiB)"]),
        _row(["---"] * 5),
    ]
    pool = results.get("pool", {})
    rows = []
    if pool.get("idle_memory_mib", {}).get("n"):
        rows.append(
            (f"pool container, idle (pool of {pool['size']} full)", pool["idle_memory_mib"])
        )
    for b in _bursts(results):
        if b.get("lab_memory_mib", {}).get("n"):
            label = BURST_LABELS.get(b["kind"], b["kind"])
            rows.append(
                (f"lab container just after a burst of {b['n']}: {label}", b["lab_memory_mib"])
            )
    for label, m in rows:
        lines.append(
            _row(
                [
                    label,
                    str(m["n"]),
                    f"{m['median']:.0f}",
                    f"{m['max']:.0f}",
                    f"{m['total']:.0f}",
                ]
            )
        )
    lines += ["", _row(["hub", "RSS idle (MB)", "RSS after its burst (MB)"]), _row(["---"] * 3)]
    for kind, rss in results.get("hub_rss_mb", {}).items():
        label = BURST_LABELS.get(kind, kind)
        if kind == "lab_warm":
            label = "LabDockerSpawner with a warm pool (idle: the pool full)"
        after = rss.get("after_burst")
        lines.append(_row([label, f"{rss['idle']:.0f}", f"{after:.0f}" if after else ""]))
    lines += [
        "",
        "Container memory is `docker stats --no-stream` (usage less page cache); hub RSS is "
        "the JupyterHub process alone.",
        "",
    ]
    return lines


def goals(results: dict) -> list[tuple[str, str, str]]:
    """The goals of issue 16 as (goal, met / not met / not measured, the figures)."""
    floor = _plain_floor(results)
    single = results.get("single", {})
    why_no_warm = results.get("warm_error") or results.get("warm_skipped") or "no warm run"
    why_no_warm = why_no_warm.splitlines()[0]
    out = []
    for kind, goal, text in (
        ("lab_cold", COLD_GOAL, "LabDockerSpawner cold median"),
        ("lab_warm", WARM_GOAL, "LabDockerSpawner warm median"),
    ):
        s = single.get(kind)
        name = f"{text} <= {goal}x plain floor"
        if not s or not floor:
            out.append((name, "not measured", why_no_warm if kind == "lab_warm" else ""))
            continue
        ratio = s["median"] / floor
        out.append(
            (
                name,
                "met" if ratio <= goal else "not met",
                f"{ratio:.2f}x ({s['median']:.2f} s vs {floor:.2f} s)",
            )
        )
    name = (
        f"burst of {BURST_GOAL_N} from a full pool >= {BURST_GOAL:g}x faster than stock's "
        f"burst of {BURST_GOAL_N}, 0 failures"
    )
    warm = next((b for b in _bursts(results) if b["kind"] == "lab_warm"), None)
    stock = warm and _burst_of(results, "stock_plain", warm["n"])
    if not warm or not stock:
        out.append((name, "not measured", why_no_warm))
        return out
    speedup = stock["seconds_to_all_ready"] / warm["seconds_to_all_ready"]
    status = "met" if speedup >= BURST_GOAL and warm["failures"] == 0 else "not met"
    figures = (
        f"{speedup:.1f}x ({warm['seconds_to_all_ready']:.1f} s vs "
        f"{stock['seconds_to_all_ready']:.1f} s), {warm['failures']} failure(s)"
    )
    lean = _burst_of(results, "stock_lean", warm["n"])
    if lean:
        figures += (
            f"; against stock on labhub's image "
            f"{lean['seconds_to_all_ready'] / warm['seconds_to_all_ready']:.1f}x"
        )
    if warm["n"] != BURST_GOAL_N:
        status += f" at N={warm['n']} (the goal is for {BURST_GOAL_N}: a quick run)"
    out.append((name, status, figures))
    return out


def logins_table(results: dict) -> list[str]:
    lines = ["### LDAP logins through the hub's login form", ""]
    lines.append(_row(["authenticator", "mode", "logins/s", "p50 (ms)", "p95 (ms)", "failed"]))
    lines.append(_row(["---"] * 6))
    for kind, modes in results["logins"].items():
        for mode, r in modes.items():
            lines.append(
                _row(
                    [
                        kind,
                        mode,
                        f"{r['per_second']:.1f}",
                        f"{r['p50_ms']:.0f}",
                        f"{r['p95_ms']:.0f}",
                        str(r["failed"]),
                    ]
                )
            )
    lines.append("")
    return lines


def stalled_table(results: dict) -> list[str]:
    lines = ["### /hub/api for others while one login waits on a stalled directory", ""]
    lines.append(
        _row(["authenticator", "requests", "p50 (ms)", "p99 (ms)", "max (ms)", "timed out"])
    )
    lines.append(_row(["---"] * 6))
    for kind, r in results["stalled"].items():
        lines.append(
            _row(
                [
                    kind,
                    str(r["requests"]),
                    f"{r['p50_ms']:.0f}",
                    f"{r['p99_ms']:.0f}",
                    f"{r['max_ms']:.0f}",
                    str(r["timed_out"]),
                ]
            )
        )
    lines.append("")
    return lines


#: The goals of issue 26 for "Sign in" to first output: warm against stock, and in seconds.
BROWSER_WARM_VS_STOCK = 0.5
BROWSER_WARM_SECONDS = 2.5
BROWSER_ROWS = (
    ("stock_plain", "stock DockerSpawner, plain Jupyter image"),
    ("lab_cold", "labhub cold"),
    ("lab_warm", "labhub from a warm pool"),
)


def browser_goals(browser: dict) -> list[tuple[str, str, str]]:
    summary = browser.get("summary", {})
    warm, stock = summary.get("lab_warm"), summary.get("stock_plain")
    if not warm or not stock:
        return []
    ratio = warm["median"] / stock["median"]
    return [
        (
            f"warm median <= {BROWSER_WARM_VS_STOCK}x stock",
            "met" if ratio <= BROWSER_WARM_VS_STOCK else "not met",
            f"{ratio:.2f}x ({warm['median']:.2f} s vs {stock['median']:.2f} s)",
        ),
        (
            f"warm median < {BROWSER_WARM_SECONDS} s",
            "met" if warm["median"] < BROWSER_WARM_SECONDS else "not met",
            f"{warm['median']:.2f} s",
        ),
    ]


def browser_table(results: dict) -> list[str]:
    browser = results["browser"]
    from benchmarks.browser import MARKS

    lines = [
        '### "Sign in" to the first cell\'s output, in Chromium (s)',
        "",
        _row(["what", "median", "p95", "n", "x stock"]),
        _row(["---"] * 5),
    ]
    stock = browser["summary"].get("stock_plain", {}).get("median")
    for key, label in BROWSER_ROWS:
        s = browser["summary"].get(key)
        if s:
            lines.append(
                _row(
                    [
                        label,
                        f"{s['median']:.2f}",
                        f"{s['p95']:.2f}",
                        str(s["n"]),
                        _ratio(s["median"], stock),
                    ]
                )
            )
    lines += ["", "Where the time goes: median seconds after the click at each mark.", ""]
    lines.append(_row(["mark", *[label for _, label in BROWSER_ROWS]]))
    lines.append(_row(["---"] * (1 + len(BROWSER_ROWS))))
    for mark, text in MARKS:
        cells = [text]
        for key, _ in BROWSER_ROWS:
            values = [r["marks"][mark] for r in browser["runs"].get(key, []) if mark in r["marks"]]
            cells.append(f"{sorted(values)[len(values) // 2]:.2f}" if values else "")
        lines.append(_row(cells))
    lines += ["", "### Goals (issue 26)", ""]
    lines += [
        f"- {name}: **{status}** ({figures})" for name, status, figures in browser_goals(browser)
    ]
    lines.append("")
    return lines


def table(results: dict) -> str:
    lines: list[str] = []
    if "floor" in results:
        lines += spawn_table(results)
    if _bursts(results):
        lines += burst_table(results)
    if results.get("pool") or results.get("hub_rss_mb"):
        lines += memory_table(results)
    if "floor" in results:
        lines += ["### Goals (issue 16)", ""]
        lines += [
            f"- {name}: **{status}**" + (f" ({figures})" if figures else "")
            for name, status, figures in goals(results)
        ]
        lines.append("")
    if "logins" in results:
        lines += logins_table(results)
    if "stalled" in results:
        lines += stalled_table(results)
    if results.get("browser", {}).get("summary"):
        lines += browser_table(results)
    return "\n".join(lines)


def _plot_single(ax, results: dict) -> None:
    labels, data = [], []
    for where, key, _ in SPAWN_ROWS:
        s = results.get(where, {}).get(key)
        if s:
            labels.append(SHORT_LABELS[key])
            data.append(s["values"])
    ax.boxplot(data, tick_labels=labels)
    floor = _plain_floor(results)
    if floor:
        for goal, style in ((COLD_GOAL, "--"), (WARM_GOAL, ":")):
            ax.axhline(goal * floor, color="grey", linestyle=style, linewidth=1)
            ax.text(0.55, goal * floor, f"{goal}x plain floor", fontsize=7, va="bottom")
    ax.set_ylim(bottom=0)
    ax.set_title("spawn: request to ready (s)")
    ax.tick_params(axis="x", labelsize=7)


def _plot_burst(ax, results: dict) -> None:
    for b in _bursts(results):
        curve = b.get("ready_curve") or [(0, 0), (b["seconds_to_all_ready"], b["n"])]
        xs = [t for t, _ in curve]
        ys = [n for _, n in curve]
        label = f"{BURST_LABELS.get(b['kind'], b['kind'])}: {b['seconds_to_all_ready']:.1f} s"
        if b["failures"]:
            label += f", {b['failures']} failed"
        ax.step(xs, ys, where="post", label=label)
    n = max((b["n"] for b in _bursts(results)), default=0)
    ax.set_xlabel("seconds after N users asked at once")
    ax.set_ylabel("servers ready")
    ax.set_title(f"burst of {n}: servers ready over time")
    ax.legend(fontsize=7, loc="lower right")


def _plot_memory(ax, results: dict) -> None:
    """Per-container medians (one colour) beside each hub's RSS (another)."""
    bars: list[tuple[str, float, str]] = []
    pool = results.get("pool", {}).get("idle_memory_mib", {})
    if pool.get("n"):
        bars.append(("pool container\nidle", pool["median"], "tab:green"))
    for b in _bursts(results):
        if b.get("lab_memory_mib", {}).get("n"):
            name = SHORT_LABELS.get(b["kind"], b["kind"]).replace("\n", " ")
            bars.append((f"lab: {name}\nafter burst", b["lab_memory_mib"]["median"], "tab:blue"))
    for kind, rss in results.get("hub_rss_mb", {}).items():
        name = SHORT_LABELS.get(kind, kind).replace("\n", " ")
        after = rss.get("after_burst")
        when = "after burst" if after else "idle"
        bars.append((f"hub: {name}\n{when}", after or rss["idle"], "tab:grey"))
    ax.bar(range(len(bars)), [v for _, v, _ in bars], color=[c for _, _, c in bars])
    ax.set_xticks(range(len(bars)), [label for label, _, _ in bars], fontsize=6, rotation=30)
    ax.set_title("memory (MiB): container medians, hub RSS (grey)")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if results.get("single"):
        panels.append(_plot_single)
    if _bursts(results):
        panels.append(_plot_burst)
    if results.get("pool") or results.get("hub_rss_mb"):
        panels.append(_plot_memory)
    if "logins" in results:
        panels.append(_plot_logins)
    if "stalled" in results:
        panels.append(_plot_stalled)
    if results.get("browser", {}).get("summary"):
        panels += [_plot_browser, _plot_browser_marks]
    if not panels:
        return
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows), squeeze=False)
    for ax, draw in zip(axes.flat, panels, strict=False):
        draw(ax, results)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    if "floor" in results:
        summary = "; ".join(
            f"{name.split(' <=')[0].split(' >=')[0]}: {status}"
            for name, status, _ in goals(results)
        )
        fig.suptitle(f"goals (issue 16): {summary}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_logins(ax, results: dict) -> None:
    labels, values = [], []
    for kind, modes in results["logins"].items():
        for mode, r in modes.items():
            labels.append(f"{kind}\n{mode}")
            values.append(r["per_second"])
    ax.bar(labels, values)
    ax.set_title("LDAP logins per second")
    ax.tick_params(axis="x", labelsize=7)


def _plot_stalled(ax, results: dict) -> None:
    kinds = list(results["stalled"])
    ax.bar(kinds, [results["stalled"][k]["p99_ms"] for k in kinds])
    ax.set_yscale("log")
    ax.set_title("/hub/api p99 (ms) while LDAP stalls")


def _plot_browser(ax, results: dict) -> None:
    browser = results["browser"]
    labels, data = [], []
    for key, label in BROWSER_ROWS:
        runs = browser["runs"].get(key)
        if runs:
            labels.append(label.replace(", ", "\n"))
            data.append([r["seconds"] for r in runs])
    ax.boxplot(data, tick_labels=labels)
    ax.axhline(BROWSER_WARM_SECONDS, color="grey", linestyle=":", linewidth=1)
    ax.text(0.55, BROWSER_WARM_SECONDS, f"goal: warm < {BROWSER_WARM_SECONDS} s", fontsize=7)
    ax.set_ylim(bottom=0)
    ax.set_title('"Sign in" to first output, Chromium (s)')
    ax.tick_params(axis="x", labelsize=7)


def _plot_browser_marks(ax, results: dict) -> None:
    """A waterfall per row: the median time between one mark and the next, stacked."""
    from benchmarks.browser import MARKS

    browser = results["browser"]
    rows = [(key, label) for key, label in BROWSER_ROWS if browser["runs"].get(key)]
    for y, (key, _) in enumerate(rows):
        start = 0.0
        for i, (mark, text) in enumerate(MARKS):
            values = sorted(r["marks"][mark] for r in browser["runs"][key] if mark in r["marks"])
            if not values:
                continue
            end = max(values[len(values) // 2], start)
            ax.barh(y, end - start, left=start, color=f"C{i}", label=text if y == 0 else None)
            start = end
    ax.set_yticks(range(len(rows)), [label.replace(", ", "\n") for _, label in rows], fontsize=7)
    ax.set_xlabel("seconds after the click (medians)")
    ax.set_title("where the time goes")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results.json written by run.py")
    parser.add_argument("--png", type=Path, help="write the plot here")
    parser.add_argument("--md", type=Path, help="write the tables here")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    text = table(results)
    print(text)
    if args.md:
        args.md.write_text(text + "\n")
    if args.png:
        plot(results, args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
