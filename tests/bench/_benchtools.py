"""Shared by the benchmark scripts: a throwaway PostgreSQL server, percentiles, tables.

Not a benchmark itself (the leading underscore keeps it apart from the scripts).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- PostgreSQL -----------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on the PATH, else Debian's newest
    ``/usr/lib/postgresql/<major>/bin``."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


@contextlib.contextmanager
def throwaway_postgres(bindir: Path) -> Iterator[str]:
    """A PostgreSQL cluster in a temporary directory, on a free loopback port, trusting
    loopback connections (as tests/sql/conftest.py and .ci/run start one: run as the
    ``postgres`` user when we are root, fsync off). Yields the url of an empty database;
    the cluster is stopped and deleted afterwards."""
    import psycopg2  # only the PostgreSQL runs need it

    directory = Path(tempfile.mkdtemp(prefix="arbotd-bench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")  # KeyError: no user to run the server as
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = directory / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True,
                       cwd=directory)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "arbot", "--auth=trust",
            "-E", "UTF8", "--no-sync", "--no-instructions")
        options = (f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_wal_size=4GB")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
            "-l", str(directory / "server.log"), "-w", "-t", "60", "start")
        admin = psycopg2.connect(host="127.0.0.1", port=port, user="arbot", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE arbot_bench")
        admin.close()
        yield f"postgresql://arbot@127.0.0.1:{port}/arbot_bench"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(directory, ignore_errors=True)


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
