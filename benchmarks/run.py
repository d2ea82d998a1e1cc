"""Run labhub's benchmarks: spawn floor, single spawns, bursts, LDAP logins, stalled directory.

    python3 benchmarks/run.py            # everything, about 10-15 minutes on 2 cores
    python3 benchmarks/run.py --quick    # fewer runs, a smoke test of the script

Prints a table, writes benchmarks/out/results.json, results.md and benchmarks.png.
Needs root, a Docker engine (started if missing), the offline image (built if missing),
configurable-http-proxy and slapd, like the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import plot, table  # noqa: E402
from labhub.engine import ensure_engine  # noqa: E402
from labhub.image import DEFAULT_IMAGE, build_offline_image  # noqa: E402


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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 spawns, bursts of 5, few logins")
    parser.add_argument("--only", choices=["spawn", "ldap"], help="run one group only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"), help="output folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = ensure_engine()
    results: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="labhub-bench-") as tmp:
            work = Path(tmp)
            if args.only in (None, "spawn"):
                from benchmarks.spawn import run_spawn_benchmarks

                image = build_offline_image(DEFAULT_IMAGE, workdir="/var/tmp")
                results.update(
                    run_spawn_benchmarks(
                        image,
                        work / "spawn",
                        runs=3 if args.quick else 10,
                        bursts=[5] if args.quick else [10, 25, 50],
                    )
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
    plot(results, out / "benchmarks.png")
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'benchmarks.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
