"""Turn benchmark results into a text table (stdout, RESULTS.md) and a PNG plot."""

from __future__ import annotations

from pathlib import Path


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(results: dict) -> str:
    lines: list[str] = []
    if "floor" in results:
        floor = results["floor"]["median"]
        lines += [
            "### Spawn latency (s)",
            "",
            _row(["what", "median", "p95", "n", "x floor", "x stock"]),
        ]
        lines.append(_row(["---"] * 6))
        lines.append(
            _row(
                [
                    "docker run floor",
                    f"{floor:.2f}",
                    f"{results['floor']['p95']:.2f}",
                    str(results["floor"]["n"]),
                    "1.00",
                    "",
                ]
            )
        )
        single = results.get("single", {})
        stock = single.get("stock", {}).get("median")
        for kind, label in (("stock", "stock DockerSpawner"), ("labhub", "LabDockerSpawner")):
            if kind in single:
                s = single[kind]
                lines.append(
                    _row(
                        [
                            label,
                            f"{s['median']:.2f}",
                            f"{s['p95']:.2f}",
                            str(s["n"]),
                            f"{s['median'] / floor:.2f}",
                            f"{s['median'] / stock:.2f}" if stock else "",
                        ]
                    )
                )
        lines.append("")
    if "burst" in results:
        lines += ["### Burst: N users start at once", ""]
        lines.append(_row(["spawner", "N", "all ready (s)", "failures", "hub RSS (MB)"]))
        lines.append(_row(["---"] * 5))
        for kind, runs in results["burst"].items():
            for run in runs:
                lines.append(
                    _row(
                        [
                            kind,
                            str(run["n"]),
                            f"{run['seconds_to_all_ready']:.1f}",
                            str(run["failures"]),
                            f"{run['hub_rss_mb']:.0f}",
                        ]
                    )
                )
        lines.append("")
    if "logins" in results:
        lines += ["### LDAP logins through the hub's login form", ""]
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
    if "stalled" in results:
        lines += ["### /hub/api for others while one login waits on a stalled directory", ""]
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
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [k for k in ("single", "burst", "logins", "stalled") if k in results]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "single":
            data = [results["floor"]["values"]] + [
                results["single"][k]["values"] for k in results["single"]
            ]
            ax.boxplot(data, tick_labels=["floor"] + list(results["single"]))
            ax.set_title("single spawn (s)")
        elif panel == "burst":
            for kind, runs in results["burst"].items():
                ax.plot(
                    [r["n"] for r in runs],
                    [r["seconds_to_all_ready"] for r in runs],
                    marker="o",
                    label=kind,
                )
            ax.set_xlabel("users starting at once")
            ax.set_title("burst: time until all ready (s)")
            ax.legend()
        elif panel == "logins":
            labels, values = [], []
            for kind, modes in results["logins"].items():
                for mode, r in modes.items():
                    labels.append(f"{kind}\n{mode}")
                    values.append(r["per_second"])
            ax.bar(labels, values)
            ax.set_title("LDAP logins per second")
        elif panel == "stalled":
            kinds = list(results["stalled"])
            ax.bar(kinds, [results["stalled"][k]["p99_ms"] for k in kinds])
            ax.set_yscale("log")
            ax.set_title("/hub/api p99 (ms) while LDAP stalls")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
