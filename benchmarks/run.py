"""Run labhub's benchmarks: spawns, bursts, the warm pool, LDAP logins, "Sign in" to output.

    python3 benchmarks/run.py                      # everything, about 15-20 minutes on 2 cores
    python3 benchmarks/run.py --quick              # 3 runs, burst of 5, pool of 5: a smoke test
    python3 benchmarks/run.py --quick --only spawn # the spawn part of the smoke test
    python3 benchmarks/run.py --publish            # also write benchmarks/results.json and .png
    python3 benchmarks/run.py --only browser --runs 7 --publish
                                                   # "Sign in" to first output, in Chromium
    python3 benchmarks/run.py scale --labs 200     # N idle labs on one host (benchmarks/scale.py)

Prints one progress line per measured run or phase on stderr while it runs, then
the tables and the goals of issue 16 on stdout; writes benchmarks/out/results.json,
results.md and benchmarks.png. Needs root, a Docker engine (started if missing),
labhub's image (built if missing; the plain Jupyter image is built FROM it, once),
configurable-http-proxy and slapd like the test suite, and matplotlib for the plot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.progress import say  # noqa: E402
from benchmarks.report import plot, table  # noqa: E402
from labhub.cli.docker_setup import ensure_engine  # noqa: E402
from labhub.cli.image import DEFAULT_IMAGE, build_offline_image  # noqa: E402


def machine() -> dict:
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["scale"]:  # its own options and output; not part of the default run
        from benchmarks.scale import main as scale_main

        return scale_main(argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 runs, burst of 5, pool of 5, few logins"
    )
    parser.add_argument("--only", choices=["spawn", "ldap", "browser"], help="run one group only")
    parser.add_argument("--runs", type=int, help="single spawns per row (default 10, quick 3)")
    parser.add_argument("--burst", type=int, help="users in a burst (default 50, quick 5)")
    parser.add_argument("--pool", type=int, help="warm pool size (default: the burst's size)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"), help="output folder")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also write benchmarks/results.json and results.png (a full run only)",
    )
    args = parser.parse_args(argv)
    browser_only = args.only == "browser"
    if args.publish and (args.quick or (args.only and not browser_only) or args.burst or args.pool):
        parser.error(
            "--publish is for a full run or --only browser: leave out --quick, --burst, --pool"
        )
    if args.publish and args.runs and not browser_only:
        parser.error("--publish with --runs is for --only browser")
    runs = args.runs or (3 if args.quick else 10)
    burst_n = args.burst or (5 if args.quick else 50)
    pool_size = args.pool or burst_n
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = ensure_engine()
    results: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="labhub-bench-") as tmp:
            work = Path(tmp)
            if args.only in (None, "spawn", "browser"):
                from benchmarks.images import ensure_plain_image

                say("image", f"labhub image {DEFAULT_IMAGE} (built if missing)")
                lean = build_offline_image(DEFAULT_IMAGE, workdir="/var/tmp")
                plain = ensure_plain_image(lean)
            if args.only in (None, "spawn"):
                from benchmarks.spawn import run_spawn_benchmarks

                results.update(
                    run_spawn_benchmarks(lean, plain, work / "spawn", runs, burst_n, pool_size)
                )
            if args.only in (None, "browser"):
                from benchmarks.browser import run_browser_benchmarks

                results["browser"] = run_browser_benchmarks(
                    lean, plain, work / "browser", args.runs or (3 if args.quick else 7)
                )
            if args.only in (None, "ldap"):
                from benchmarks.logins import run_login_benchmarks

                results.update(run_login_benchmarks(work / "ldap", quick=args.quick))
    finally:
        engine.stop()
    results["seconds"] = round(time.monotonic() - t0, 1)
    text = table(results)
    print(text)
    print(f"total: {results['seconds']} s")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(text + "\n")
    written = [out / "results.json", out / "results.md"]
    try:
        plot(results, out / "benchmarks.png")
        written.append(out / "benchmarks.png")
    except ImportError:
        say("plot", "matplotlib is not installed, so no plot: pip install matplotlib")
    if args.publish:
        # a browser-only run has its own files: the full run's stay as they were measured
        stem = "results-browser" if browser_only else "results"
        shutil.copyfile(out / "results.json", ROOT / "benchmarks" / f"{stem}.json")
        written.append(ROOT / "benchmarks" / f"{stem}.json")
        if (out / "benchmarks.png").exists():
            shutil.copyfile(out / "benchmarks.png", ROOT / "benchmarks" / f"{stem}.png")
            written.append(ROOT / "benchmarks" / f"{stem}.png")
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if results.get("warm_error") else 0


if __name__ == "__main__":
    sys.exit(main())
