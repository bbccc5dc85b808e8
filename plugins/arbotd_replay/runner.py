"""The object the core's command line and the API find at
``runtime.plugin_state["backtest"]`` (:data:`RUNNER_KEY`), put there by this plugin's
``configure`` hook. The core never imports this plugin; it relies on these methods:

- ``command_backtest(data=..., start=..., end=..., balance=..., report=..., strict=...,
  stored=..., out=..., err=...) -> int``: ``arbotd backtest`` (``stored``: the storage's
  recorded quotes instead of files);
- ``command_record(out=..., duration=..., format=..., err=...) -> int``: ``arbotd
  record``;
- ``command_convert(source=..., destination=..., format=..., strict=..., err=...) ->
  int``: ``arbotd convert``;
- ``command_export(start=..., end=..., out=..., symbols=..., exchanges=..., err=...) ->
  int``: ``arbotd export`` (the storage's recorded quotes to Parquet, by day);
- ``command_sweep(data=..., grid=..., ..., out_dir=..., out=..., err=...) -> int``:
  ``arbotd sweep`` (:mod:`arbotd_replay.sweep`);
- ``await start_stored(start_time=..., end_time=..., symbols=..., exchanges=...,
  balance=...) -> dict``: a backtest over the storage's recorded quotes, run in a
  worker thread (``POST /api/v1/trading/start`` with ``mode: backtest``); raises
  :class:`arbotd.TradingError` with an API error code;
- ``job(id) -> BacktestJob | None`` and ``jobs() -> list[BacktestJob]``: the API's
  backtests, newest first (:meth:`BacktestJob.describe` and :meth:`BacktestJob.trades`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio

from arbotd import ArbotError, Runtime, TradingError
from arbotd_replay.backtest import (
    BacktestError,
    BacktestOptions,
    BacktestResult,
    run_backtest,
    single_error,
)
from arbotd_replay.config import BacktestConfig, parse_time
from arbotd_replay.formats import convert, export_quotes, is_taken, recording_format
from arbotd_replay.metrics import trade_row
from arbotd_replay.quotefile import BadDataError, DataProblems
from arbotd_replay.report import ProgressBar, format_summary, write_report
from arbotd_replay.session import BacktestCancelled
from arbotd_replay.sources import file_source, storage_source
from arbotd_replay.stores import RecordingStore

__all__ = ["RECORDING_KEY", "RUNNER_KEY", "BacktestJob", "BacktestRunner"]

log = logging.getLogger("arbotd_replay")

RUNNER_KEY = "backtest"
"""``runtime.plugin_state`` key of the :class:`BacktestRunner` (documented for the core
and the API)."""
RECORDING_KEY = "replay.recording"
"""``runtime.plugin_state`` key of the recorder's store: it marks the recorder's
runtime for the plugin's hook wrappers."""

KEPT_JOBS = 20
"""Finished API backtests kept for ``GET /api/v1/backtests`` (the oldest go first)."""


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(eq=False)
class BacktestJob:
    """A backtest started through the API. ``status`` is ``running``, ``completed`` or
    ``failed`` (with ``error``); ``progress`` the share of the time range replayed."""

    id: int
    start_time: float
    end_time: float
    symbols: list[str] | None
    exchanges: list[str] | None
    balance: float
    created_at: float
    status: str = "running"
    progress: float = 0.0
    finished_at: float | None = None
    error: str | None = None
    result: BacktestResult | None = None
    cancel: threading.Event = attrs.field(factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        """The job as the API shows it (without its trades)."""
        return {
            "backtest_id": self.id,
            "status": self.status,
            "progress_percent": round(self.progress * 100, 2),
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "request": {"start_time": self.start_time, "end_time": self.end_time,
                        "symbols": self.symbols, "exchanges": self.exchanges,
                        "balance": self.balance},
            "error": self.error,
            "metrics": self.result.metrics if self.result is not None else None,
        }

    def trades(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the trades (as in ``trades.csv``), oldest first, and the total."""
        if self.result is None:
            return [], 0
        trades = self.result.trades
        return [trade_row(t) for t in trades[offset:offset + limit]], len(trades)


class BacktestRunner:
    """Runs backtests for the command line and the API of the daemon ``runtime``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._jobs: dict[int, BacktestJob] = {}
        self._next_id = 1
        self._nursery: trio.Nursery | None = None

    def _section(self) -> BacktestConfig:
        return self.runtime.config["backtest"]

    # --- the command line -------------------------------------------------------------------

    def command_backtest(
        self,
        *,
        data: Sequence[str] = (),
        start: str | None = None,
        end: str | None = None,
        balance: float | None = None,
        report: str | None = None,
        strict: bool = False,
        stored: bool = False,
        out: TextIO,
        err: TextIO,
    ) -> int:
        """``arbotd backtest``: exit status 0, or 1 with the reason on ``err``. With
        ``stored``, the quotes come from the configured storage's recorded quotes instead
        of files."""
        section = self._section()
        paths = [Path(name) for name in (data or section.data)]
        if stored and data:
            print("arbotd backtest: --stored replays the storage's quotes: leave out --data",
                  file=err)
            return 1
        if not paths and not stored:
            print("arbotd backtest: no data: name recorded files with --data FILE (or in "
                  "[backtest] data), or replay what the storage recorded with --stored",
                  file=err)
            return 1
        try:
            first = parse_time(start or section.start, "--start") if (start or section.start) \
                else -math.inf
            last = parse_time(end or section.end, "--end") if (end or section.end) \
                else math.inf
        except ValueError as error:
            print(f"arbotd backtest: {error}", file=err)
            return 1
        if first >= last:
            print("arbotd backtest: --end must be after --start", file=err)
            return 1
        if balance is not None and not (balance > 0 and math.isfinite(balance)):
            print(f"arbotd backtest: --balance must be a positive amount, got {balance}",
                  file=err)
            return 1
        problems = DataProblems(strict=strict or section.strict)
        bar = ProgressBar(out) if out.isatty() else None
        options = BacktestOptions.from_config(section, balance=balance)
        try:
            if stored:
                result = trio.run(self._replay_stored, first, last, options, problems, bar)
            else:
                batches, progress = file_source(paths, problems, start=first, end=last)
                result = run_backtest(
                    self.runtime.pm, self.runtime.config, batches, options=options,
                    problems=problems, progress=bar, source_progress=progress,
                )
        except (BadDataError, BacktestError, TradingError, ArbotError) as error:
            if bar is not None:
                bar.close()
            print(f"arbotd backtest: {error}", file=err)
            return 1
        if bar is not None:
            bar.close()
        print(format_summary(result), file=out)
        directory = report or section.report_dir
        if directory:
            files = write_report(result, Path(directory))
            print(f"\n  report: {', '.join(str(p) for p in files)}", file=out)
        return 0

    async def _replay_stored(self, first: float, last: float, options: BacktestOptions,
                             problems: DataProblems, bar: ProgressBar | None
                             ) -> BacktestResult:
        """Open the configured storage (read only: nothing is recorded), replay its
        recorded quotes from ``first`` to ``last`` in a worker thread, and close it."""
        runtime = self.runtime
        storage = runtime.pm.hook.provide_storage(config=runtime.config, runtime=runtime)
        if not callable(getattr(storage, "recorded_quotes", None)):
            raise BacktestError("--stored needs a storage that records quotes: the sql "
                                "plugin with [storage] record_quotes = true")
        await storage.open()
        try:
            start = max(first, 0.0)
            end = min(last, time.time() + 1.0)
            if not await storage.recorded_exchanges(start, end):
                raise BacktestError(f"no recorded quotes between {_iso(start)} and "
                                    f"{_iso(end)} in {getattr(storage, 'display', 'storage')}"
                                    " (is [storage] record_quotes on?)")

            def run() -> BacktestResult:
                batches, progress = storage_source(storage, problems, start=start, end=end)
                return run_backtest(runtime.pm, runtime.config, batches, options=options,
                                    problems=problems, progress=bar,
                                    source_progress=progress)

            return await trio.to_thread.run_sync(run)
        finally:
            with trio.CancelScope(shield=True):
                await storage.close()

    def command_sweep(self, *, out_dir: str, out: TextIO, err: TextIO, **options: Any
                      ) -> int:
        """``arbotd sweep``: the options of :class:`arbotd_replay.sweep.SweepOptions`
        (``out_dir`` is its ``out``); exit status 0, 1 with the reason on ``err``, 130
        when interrupted."""
        from arbotd_replay.sweep import SweepOptions, command_sweep

        options["data"] = tuple(options.get("data") or ())
        options["grid"] = tuple(options.get("grid") or ())
        return command_sweep(self.runtime, SweepOptions(out=out_dir, **options), out=out,
                             err=err)

    def command_record(self, *, out: str, duration: float | None, err: TextIO,
                       format: str | None = None) -> int:
        """``arbotd record``: run the configured feeds, write every quote to ``out``
        until SIGINT/SIGTERM or ``duration`` seconds; no trading, no API, no storage.
        ``format`` (``csv`` or ``parquet``) is told by ``out``'s name when not given."""
        if duration is not None and not (duration > 0 and math.isfinite(duration)):
            print(f"arbotd record: --duration must be positive, got {duration}", file=err)
            return 1
        try:
            kind = recording_format(out, format)
        except ValueError as error:
            print(f"arbotd record: {error}", file=err)
            return 1
        if is_taken(Path(out)):
            # A recording is hours of market that cannot be had again: never overwrite.
            print(f"arbotd record: {out} already exists; choose another file or remove it",
                  file=err)
            return 1
        store = RecordingStore(Path(out), kind)
        pm, config = self.runtime.pm, self.runtime.config

        async def main() -> None:
            runtime = Runtime(config, pm)
            runtime.plugin_state[RECORDING_KEY] = store
            runtime.configure_plugins()
            runtime.assemble()
            assert runtime.engine is not None and runtime.feeds is not None
            # Only quotes are wanted: no strategy needs to look at them.
            runtime.engine.strategies = []
            if not runtime.feeds.adapters:
                raise BacktestError("no exchange is enabled: nothing to record")
            print(f"recording {len(runtime.feeds.symbols)} symbols on "
                  f"{', '.join(sorted(runtime.feeds.adapters))} to {out}"
                  f"{f' for {duration:g} s' if duration else ''}; Ctrl-C stops",
                  file=err)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as core:
                    await core.start(runtime.run_core)
                    async with trio.open_nursery() as helpers:
                        helpers.start_soon(_stop_on_signal, signals, runtime)
                        if duration:
                            helpers.start_soon(_stop_after, duration, runtime)
                        await runtime.shutdown_requested.wait()
                        helpers.cancel_scope.cancel()

        try:
            trio.run(main)
        except BaseExceptionGroup as group:
            error = single_error(group)
            print(f"arbotd record: {type(error).__name__}: {error}", file=err)
            return 1
        except (BacktestError, OSError) as error:
            print(f"arbotd record: {error}", file=err)
            return 1
        late = f" ({store.late:,} left out: out of time order)" if store.late else ""
        print(f"recorded {store.written:,} quotes to {out}{late}", file=err)
        return 0

    def command_convert(self, *, source: str, destination: str, err: TextIO,
                        format: str | None = None, strict: bool = False) -> int:
        """``arbotd convert``: the quotes of a recording (CSV or Parquet) to another
        (the format of ``destination``'s name, or ``format``), book levels kept; bad rows
        skipped and reported as a backtest skips them, or refused with ``strict``."""
        if is_taken(Path(destination)):
            print(f"arbotd convert: {destination} already exists; choose another name or "
                  "remove it", file=err)
            return 1
        problems = DataProblems(strict=strict)
        try:
            written, levels = convert(Path(source), destination, problems, format)
        except (BadDataError, ValueError, OSError) as error:
            print(f"arbotd convert: {error}", file=err)
            return 1
        skipped = f"; {problems.total:,} bad rows skipped" if problems.total else ""
        book = " with book levels" if levels else ""
        print(f"converted {written:,} quotes{book} from {source} to {destination}{skipped}",
              file=err)
        return 0

    def command_export(self, *, start: str, end: str, out: str, err: TextIO,
                       symbols: Sequence[str] | None = None,
                       exchanges: Sequence[str] | None = None) -> int:
        """``arbotd export``: the configured storage's recorded quotes from ``start`` to
        ``end`` (optionally of some symbols or exchanges only) as Parquet under the
        directory ``out``, one ``date=YYYY-MM-DD`` folder a day (see
        :class:`~arbotd_replay.formats.DayPartitionedWriter`)."""
        try:
            first, last = parse_time(start, "--start"), parse_time(end, "--end")
        except ValueError as error:
            print(f"arbotd export: {error}", file=err)
            return 1
        if first >= last:
            print("arbotd export: --end must be after --start", file=err)
            return 1
        directory = Path(out)
        if directory.exists() and not directory.is_dir():
            print(f"arbotd export: {out} is a file; --out names a directory", file=err)
            return 1
        if is_taken(directory):
            print(f"arbotd export: {out} is not empty; choose another directory or empty it",
                  file=err)
            return 1
        problems = DataProblems()
        try:
            days = trio.run(self._export_stored, first, last, directory, problems,
                            symbols, exchanges)
        except (BadDataError, BacktestError, ArbotError, OSError) as error:
            print(f"arbotd export: {error}", file=err)
            return 1
        skipped = f"; {problems.total:,} bad rows skipped" if problems.total else ""
        for day, count in days.items():
            print(f"  {directory / f'date={day}'}: {count:,} quotes", file=err)
        print(f"exported {sum(days.values()):,} quotes to {out}{skipped}", file=err)
        return 0

    async def _export_stored(self, first: float, last: float, directory: Path,
                             problems: DataProblems, symbols: Sequence[str] | None,
                             exchanges: Sequence[str] | None) -> dict[str, int]:
        runtime = self.runtime
        storage = runtime.pm.hook.provide_storage(config=runtime.config, runtime=runtime)
        if not callable(getattr(storage, "recorded_quotes", None)):
            raise BacktestError("export needs a storage that records quotes: the sql "
                                "plugin with [storage] record_quotes = true")
        await storage.open()
        try:
            def run() -> dict[str, int]:
                batches, _ = storage_source(storage, problems, start=first, end=last,
                                            symbols=symbols, exchanges=exchanges)
                days = export_quotes(batches, directory)
                problems.finish()
                return days

            days = await trio.to_thread.run_sync(run)
        finally:
            with trio.CancelScope(shield=True):
                await storage.close()
        if not days:
            raise BacktestError(f"no recorded quotes between {_iso(first)} and {_iso(last)}"
                                f" in {getattr(storage, 'display', 'storage')} (is [storage] "
                                "record_quotes on?)")
        return days

    # --- the API ------------------------------------------------------------------------------

    def attach(self, nursery: trio.Nursery | None) -> None:
        """The nursery API backtests run in (the plugin's service); ``None`` when it
        stops."""
        self._nursery = nursery

    def job(self, job_id: int) -> BacktestJob | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[BacktestJob]:
        return sorted(self._jobs.values(), key=lambda j: -j.id)

    def cancel_all(self) -> None:
        for job in self._jobs.values():
            job.cancel.set()

    async def start_stored(
        self,
        *,
        start_time: float,
        end_time: float,
        symbols: Sequence[str] | None = None,
        exchanges: Sequence[str] | None = None,
        balance: float | None = None,
    ) -> dict[str, Any]:
        """Start a backtest over the storage's recorded quotes from ``start_time`` to
        ``end_time`` (epoch seconds) in a worker thread, and answer at once with the
        trading-start fields and ``backtest_id``. The daemon's feeds, control and
        storage are left alone (the storage is only read)."""
        runtime = self.runtime
        storage = runtime.storage
        if self._nursery is None:
            raise TradingError("TRADING_DISABLED", "backtests run only in a running daemon")
        if not callable(getattr(storage, "recorded_quotes", None)):
            raise TradingError(
                "TRADING_DISABLED",
                "backtests over stored quotes need a storage that records quotes: the sql "
                "plugin with [storage] record_quotes = true",
                {"mode": "backtest"})
        if not (math.isfinite(start_time) and math.isfinite(end_time)
                and 0 <= start_time < end_time):
            raise TradingError("VALIDATION_ERROR", "end_time must be after start_time",
                               {"field": "end_time"})
        if balance is not None and not (math.isfinite(balance) and balance > 0):
            raise TradingError("VALIDATION_ERROR", "balance must be a positive amount",
                               {"field": "balance"})
        self._refuse_if_running()
        traded = list(runtime.control.symbols) if runtime.control is not None else []
        unknown = [s for s in symbols or () if s not in traded]
        if unknown:
            raise TradingError("INVALID_SYMBOL", f"Symbol {unknown[0]!r} is not supported",
                               {"valid_symbols": traded, "provided_symbol": unknown[0]})
        await storage.flush()  # quotes received up to now are readable
        recorded = await storage.recorded_exchanges(start_time, end_time)
        if not recorded:
            raise TradingError(
                "VALIDATION_ERROR",
                f"no recorded quotes between {_iso(start_time)} and {_iso(end_time)} "
                "(is [storage] record_quotes on?)", {"field": "start_time"})
        missing = [e for e in exchanges or () if e not in recorded]
        if missing:
            raise TradingError(
                "EXCHANGE_NOT_AVAILABLE",
                f"Exchange {missing[0]!r} has no recorded quotes in that range",
                {"available_exchanges": recorded, "provided_exchange": missing[0]})
        # Again: another request may have started one while this one waited above.
        self._refuse_if_running()
        section = self._section()
        job = BacktestJob(self._next_id, start_time, end_time,
                          list(symbols) if symbols else None,
                          list(exchanges) if exchanges else None,
                          balance if balance is not None else section.balance, time.time())
        self._next_id += 1
        self._jobs[job.id] = job
        finished = [j for j in self.jobs() if j.status != "running"]
        for old in finished[KEPT_JOBS:]:
            del self._jobs[old.id]
        self._nursery.start_soon(self._run_job, job, runtime.config, storage)
        log.info("backtest %d started over stored quotes from %s to %s", job.id,
                 _iso(start_time), _iso(end_time))
        return {
            "mode": "backtest",
            "start_time": _iso(job.created_at),
            "symbols_count": len(symbols or traded),
            "exchanges_count": len(exchanges or recorded),
            "backtest_id": job.id,
        }

    def _refuse_if_running(self) -> None:
        if self._nursery is None:
            raise TradingError("TRADING_DISABLED", "backtests run only in a running daemon")
        running = [j.id for j in self._jobs.values() if j.status == "running"]
        if running:
            raise TradingError(
                "TRADING_DISABLED",
                f"backtest {running[0]} is still running; one backtest runs at a time",
                {"backtest_id": running[0]})

    async def _run_job(self, job: BacktestJob, config: Any, storage: Any) -> None:
        def run() -> BacktestResult:
            problems = DataProblems()
            batches, progress = storage_source(
                storage, problems, start=job.start_time, end=job.end_time,
                symbols=job.symbols, exchanges=job.exchanges)

            def report(_: int, fraction: float) -> None:
                job.progress = fraction

            return run_backtest(
                self.runtime.pm, config, batches,
                options=BacktestOptions.from_config(config["backtest"], balance=job.balance),
                problems=problems, progress=report, source_progress=progress,
                cancel=job.cancel)

        try:
            job.result = await trio.to_thread.run_sync(run)
            job.status, job.progress = "completed", 1.0
            log.info("backtest %d completed: %d trades, net %s", job.id,
                     job.result.metrics["total_trades"], job.result.metrics["net_profit"])
        except BacktestCancelled:
            job.status, job.error = "failed", "cancelled: the daemon stopped"
        except Exception as error:
            if job.cancel.is_set():
                # The daemon is stopping and closed the storage under the reader: that is
                # the cancellation, not a fault of the backtest.
                job.status, job.error = "failed", "cancelled: the daemon stopped"
            else:
                log.exception("backtest %d failed", job.id)
                job.status, job.error = "failed", f"{type(error).__name__}: {error}"
        finally:
            job.finished_at = time.time()


async def _stop_on_signal(signals: Any, runtime: Runtime) -> None:
    async for signum in signals:
        log.info("%s: stopping the recorder", signal.Signals(signum).name)
        runtime.shutdown_requested.set()
        return


async def _stop_after(seconds: float, runtime: Runtime) -> None:
    await trio.sleep(seconds)
    runtime.shutdown_requested.set()
