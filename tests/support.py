"""Helpers shared by tests in several folders (importable as ``support``: the tests
folder is on ``sys.path`` through pytest's ``pythonpath`` setting)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import trio

from arbotd._daemon import Daemon
from arbotd._sdnotify import Notifier


class RecordingNotifier(Notifier):
    """Keeps the service-manager notifications instead of sending them."""

    def __init__(self) -> None:
        super().__init__(address="", watchdog_usec="")
        self.sent: list[tuple[str, ...]] = []
        self._news = trio.Event()

    def notify(self, *fields: str) -> None:
        self.sent.append(fields)
        self._news.set()
        self._news = trio.Event()

    def count(self, field: str) -> int:
        return sum(field in fields for fields in self.sent)

    async def wait_for(self, field: str, count: int = 1) -> None:
        """Wait until ``count`` notifications carried ``field`` (e.g. ``"READY=1"``)."""
        while self.count(field) < count:
            await self._news.wait()


# --- running the daemon in virtual time -----------------------------------------------------

VIRTUAL_EPOCH = 1_750_000_000.0


async def simulate(
    config_path: Path, seconds: float, notifier: RecordingNotifier | None = None
) -> tuple[Any, list[Any]]:
    """Run the daemon with the installed plugins on ``config_path`` for ``seconds`` of
    trio time, its wall clock starting at ``VIRTUAL_EPOCH`` whenever the run starts; return
    the runtime (stopped) and every quote it published. Use with the ``autojump_clock``
    fixture, requested by the test itself."""
    from arbotd import SubscriptionClosed

    notifier = notifier or RecordingNotifier()
    daemon = Daemon(config_path, notifier=notifier)
    runtime = daemon.prepare()
    runtime.use_virtual_clock(VIRTUAL_EPOCH - trio.current_time())
    quotes: list[Any] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        # Opening storage runs in a thread, during which the autojump clock moves on:
        # count the run's time from READY, when the feeds and trading have started.
        await notifier.wait_for("READY=1")
        subscription = runtime.bus.subscribe(kinds=["price"], max_pending=10**6)

        async def record() -> None:
            try:
                async for event in subscription:
                    quotes.append(event.payload)
            except SubscriptionClosed:  # the daemon shut down
                pass

        nursery.start_soon(record)
        await trio.sleep(seconds)
        runtime.shutdown_requested.set()
    return runtime, quotes


# --- a throwaway PostgreSQL server ------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on the PATH, else Debian's newest
    ``/usr/lib/postgresql/<major>/bin``; ``None`` without PostgreSQL."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


@contextlib.contextmanager
def throwaway_postgres(
    bindir: Path,
    database: str = "arbot_test",
    settings: Iterable[str] = (),
    start_timeout: int = 30,
) -> Iterator[str]:
    """A PostgreSQL cluster in a temporary directory, on a free loopback port, trusting
    loopback connections (it lives for one test session or benchmark and holds nothing),
    fsync off; run as the ``postgres`` user when we are root, as ``.ci/run`` does.
    ``settings`` are extra ``name=value`` server settings. Yields the url of the empty
    ``database``; the cluster is stopped and deleted afterwards. Raises ``LookupError``
    when running as root without a ``postgres`` user to run the server as."""
    import psycopg2  # only PostgreSQL runs need it

    directory = Path(tempfile.mkdtemp(prefix="arbotd-pg-"))
    prefix: list[str] = []
    try:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise LookupError("running as root and there is no postgres user to run "
                                  "PostgreSQL") from None
            os.chown(directory, owner.pw_uid, owner.pw_gid)
            prefix = ["runuser", "-u", "postgres", "--"]
        data, port = directory / "data", free_port()

        def run(*args: str) -> None:
            subprocess.run([*prefix, *args], check=True, capture_output=True, text=True,
                           cwd=directory)

        run(str(bindir / "initdb"), "-D", str(data), "-U", "arbot", "--auth=trust",
            "-E", "UTF8", "--no-sync", "--no-instructions")
        options = " ".join(
            [f"-p {port} -k {directory} -c listen_addresses=127.0.0.1",
             "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
             *(f"-c {setting}" for setting in settings)]
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
            "-l", str(directory / "server.log"), "-w", "-t", str(start_timeout), "start")
        try:
            admin = psycopg2.connect(host="127.0.0.1", port=port, user="arbot",
                                     dbname="postgres")
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {database}")
            admin.close()
            yield f"postgresql://arbot@127.0.0.1:{port}/{database}"
        finally:
            with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
                run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- a database whose writes fail -------------------------------------------------------------


class WriteFault:
    """While ``on``, every transaction of the storage writer (``arbotd_sql``) fails the way
    SQLite's fail on a full disk: the statements run, then SQLite ends the transaction
    itself and reports ``database or disk is full``, so the rollback that follows fails
    too. ``error`` replaces the reported error (an unwrapped driver error, an
    ``OSError``). Install it with :meth:`install` before the storage is made."""

    def __init__(self) -> None:
        self.on = False
        self.error: BaseException | None = None
        self.failures = 0

    def install(self, monkeypatch: Any) -> None:
        import peewee

        import arbotd_sql.storage
        from arbotd_sql import models

        write_records = arbotd_sql.storage.write_records

        def failing_write(records: Any) -> None:
            write_records(records)
            if self.on:
                self.failures += 1
                models.database.rollback()
                raise self.error or peewee.OperationalError("database or disk is full")

        monkeypatch.setattr(arbotd_sql.storage, "write_records", failing_write)


@contextlib.contextmanager
def tiny_filesystem(directory: Path, size: str = "512k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``directory`` (created), unmounted afterwards; the
    test is skipped where mounting is not allowed (not root, or a container without the
    capability). ``resize_filesystem(directory, size)`` changes its size."""
    import pytest

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(directory)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "--lazy", str(directory)], capture_output=True)


def resize_filesystem(directory: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(directory)], check=True,
                   capture_output=True)


# --- a market that pushes inventory one way ---------------------------------------------

INVENTORY_CONFIG = """
[daemon]
autostart = false
[plugins]
disable = ["arbotd_api", "arbotd_sql", "arbotd_sim"]
[arbitrage]
symbols = ["BTCUSDT"]
min_profit_threshold = 0.003
trade_amount_usd = 1000.0
max_position_size = 1000.0
cooldown_seconds = 5.0
max_trades_per_hour = 100000
inventory_skew = {skew}
[risk_management]
max_concurrent_trades = 1
[backtest]
balance = 5000.0
coin_balance_usd = 5000.0
"""


def write_one_way_market(path: Path, *, hours: float, seed: int = 7) -> Path:
    """A recording (``arbotd backtest --data``) of BTCUSDT on venues ``a`` and ``b``, one
    quote a second each, around a seeded random walk. Most dislocations make ``a``
    cheaper than ``b`` by 0.7 % (about 0.44 % after fees and slippage: above a 0.3 %
    threshold); the others make ``b`` cheaper by 0.5 % (about 0.24 % net: below it). Trading
    the first kind only moves BTC to ``a`` and dollars to ``b`` until the route stops for
    lack of balance; only a threshold skewed by inventory takes the second kind back."""
    import random

    rng = random.Random(seed)
    price = 60_000.0
    lines = ["local_ts,exchange_ts,exchange,symbol,bid,ask,bid_size,ask_size"]
    start = 1_700_000_000.0
    regime, until = 0.0, 0
    for second in range(int(hours * 3600)):
        price *= 1 + rng.gauss(0, 0.0002)
        if second >= until:
            roll = rng.random()
            # Dislocations of 20 s, 60 % one way and 40 % the other, then quiet.
            regime = 0.0035 if roll < 0.3 else -0.0025 if roll < 0.5 else 0.0
            until = second + 20
        mid_a, mid_b = price * (1 - regime), price * (1 + regime)
        ts = start + second
        for venue, mid in (("a", mid_a), ("b", mid_b)):
            bid, ask = round(mid * 0.99995, 2), round(mid * 1.00005, 2)
            lines.append(f"{ts:.3f},{ts:.3f},{venue},BTCUSDT,{bid},{ask},10,10")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def simulated_quotes(count: int, prices: dict[str, float], *, depth: int = 1,
                     start: float = 1_750_000_000.0) -> list[Any]:
    """At least ``count`` quotes of three simulated venues (``sim_alpha``, ``sim_beta``,
    ``sim_gamma``) quoting ``prices``' symbols, in time order from ``start``, books of
    ``depth`` levels; the venues' ticks are staggered by a third of a tick."""
    from arbotd_sim.config import SimulationConfig
    from arbotd_sim.market import VenueSimulator

    config = SimulationConfig(venues=["sim_alpha", "sim_beta", "sim_gamma"],
                              start_prices=prices, depth_levels=depth)
    sims = [VenueSimulator(config, venue, list(prices)) for venue in config.venues]
    quotes: list[Any] = []
    tick = 0
    while len(quotes) < count:
        for index, sim in enumerate(sims):
            quotes += sim.step(start + (tick + index / 3) / config.updates_per_second)
        tick += 1
    return quotes


def plain_quotes(quotes: Iterable[Any]) -> list[Any]:
    """``quotes`` as a list, each checked to hold only what a Quote made by hand holds
    (str, float, None, tuples of float pairs): nothing of numpy or pyarrow, which would
    compare equal and still differ when serialized."""
    listed = list(quotes)
    for quote in listed:
        for field in attrs.fields(type(quote)):
            value = getattr(quote, field.name)
            if isinstance(value, tuple):
                assert all(type(x) is float for level in value for x in level), (
                    field.name, value)
            else:
                assert type(value) in (str, float, type(None)), (field.name, type(value))
    return listed
