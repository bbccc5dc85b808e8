"""Shared by the benchmark scripts: a throwaway PostgreSQL server, percentiles, tables.

Not a benchmark itself (the leading underscore keeps it apart from the scripts).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# The throwaway PostgreSQL server and free ports come from the test suite's helpers, so
# that benchmarks and tests start the server the same way.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support import free_port, postgres_bindir, throwaway_postgres

__all__ = ["free_port", "postgres_bindir", "throwaway_postgres"]


def postgres_version(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                         text=True, check=False).stdout.split()
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    return out[2] if len(out) > 2 else "?"


# --- figures -------------------------------------------------------------------------------


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (0.5 = median) of ``samples``, nearest rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Seconds each of ``runs`` calls of ``fn`` took."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  "
                ) -> None:
    """Left-aligned first column, right-aligned others."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for number, row in enumerate(cells):
        line = "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        )
        print(indent + line.rstrip())
        if number == 0:
            print(indent + "  ".join("-" * w for w in widths))
