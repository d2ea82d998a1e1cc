"""Progress lines while the benchmarks run: one per measured run or phase, flushed at once.

They go to stderr, so ``run.py > table.md`` keeps only the table.
"""

from __future__ import annotations

import sys


def say(phase: str, message: str) -> None:
    """Print ``[phase] message`` to stderr now, not when the buffer fills."""
    print(f"[{phase}] {message}", file=sys.stderr, flush=True)
