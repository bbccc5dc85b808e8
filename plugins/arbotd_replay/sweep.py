"""``arbotd sweep``: many backtests of one recording, one per parameter set, as Dask
tasks, ranked by an objective.

Everything that can be wrong is found before the first run: every key and every value
of every parameter set is validated as the configuration file would be
(:func:`arbotd.config_from_text`), and every data file is opened. Then each run (a
parameter set over a period: the whole data, or the in-sample and the out-of-sample part
of a walk-forward split) is a task of its own (:mod:`arbotd_replay.sweeptask`), on a
``LocalCluster`` of one single-threaded worker process per core by default, or on an
existing cluster (``--scheduler``). A worker that dies mid-run has its run started again
elsewhere by Dask; as each run ends its figures are appended to ``results.jsonl``
(:mod:`arbotd_replay.sweeplog`), so ``--resume`` after an interruption runs only what is
missing. The ranking is written by :mod:`arbotd_replay.sweepreport`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs
import tomlkit

from arbotd import ConfigError, Runtime, config_from_text
from arbotd_replay.config import parse_time
from arbotd_replay.metrics import iso
from arbotd_replay.quotefile import BadDataError, DataProblems, QuoteFileReader
from arbotd_replay.report import write_report
from arbotd_replay.sources import file_source
from arbotd_replay.sweeplog import ResultsLog, data_fingerprint, run_key
from arbotd_replay.sweepreport import OBJECTIVES, format_table, rank, write_results
from arbotd_replay.sweepspec import (
    SweepSpecError,
    merge_axes,
    parameter_sets,
    parse_axis,
    read_params_file,
)
from arbotd_replay.sweeptask import RunOutcome, SweepTask, run_task

__all__ = ["QUIET_CLUSTER", "SweepOptions", "command_sweep", "local_cluster"]

log = logging.getLogger("arbotd_replay")

RETRIES = 2
"""How many times a run that raised (not a run that failed deterministically, which
comes back as an error) is tried again. A worker lost mid-run is a separate matter: Dask
reschedules its runs on its own, up to ``distributed.scheduler.allowed-failures``."""


class SweepError(Exception):
    """A sweep that cannot start; the message says why."""


@attrs.frozen
class SweepOptions:
    """``arbotd sweep``'s options (see its ``--help``)."""

    data: tuple[str, ...] = ()
    grid: tuple[str, ...] = ()
    params: str | None = None
    random: int | None = None
    seed: int = 0
    objective: str = "net_profit"
    walk_forward: float | None = None
    split: str | None = None
    start: str | None = None
    end: str | None = None
    out: str = "sweep"
    workers: int | None = None
    scheduler: str | None = None
    resume: bool = False
    reports: bool = False
    strict: bool = False


@attrs.frozen
class PlannedRun:
    index: int  # of the parameter set
    params: dict[str, Any]
    period: str  # all, in, out
    start: float
    end: float
    key: str


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _data_period(paths: Sequence[Path], start: float, end: float) -> tuple[float, float]:
    """The first and last quote time between ``start`` and ``end``: one pass over the
    data, for a split at a fraction of a period not given in full."""
    batches, _ = file_source(paths, DataProblems(), start=start, end=end)
    first = last = None
    try:
        for batch in batches:
            if batch:
                first = batch[0].received_ts if first is None else first
                last = batch[-1].received_ts
    finally:
        close = getattr(batches, "close", None)
        if callable(close):
            close()
    if first is None or last is None:
        raise SweepError("no quotes to replay in the data's period")
    return first, last


def _periods(options: SweepOptions, paths: Sequence[Path], section: Any
             ) -> tuple[list[tuple[str, float, float]], dict[str, Any]]:
    # As `arbotd backtest`: the command line's period, else [backtest] start and end.
    first, last = options.start or section.start, options.end or section.end
    try:
        start = parse_time(first, "--start") if first else -math.inf
        end = parse_time(last, "--end") if last else math.inf
    except ValueError as err:
        raise SweepError(str(err)) from None
    if start >= end:
        raise SweepError("--end must be after --start")
    if options.walk_forward is not None and options.split is not None:
        raise SweepError("--walk-forward and --split both split the data: give one")
    if options.walk_forward is None and options.split is None:
        return [("all", start, end)], {"walk_forward": None}
    if options.split is not None:
        try:
            split = parse_time(options.split, "--split")
        except ValueError as err:
            raise SweepError(str(err)) from None
        if not start < split < end:
            raise SweepError("--split must fall between --start and --end")
    else:
        fraction = options.walk_forward
        assert fraction is not None
        if not 0 < fraction < 1:
            raise SweepError(f"--walk-forward: the in-sample share must be between 0 and 1 "
                             f"(0.7 for the first 70 %), got {fraction}")
        first, last = (start, end) if math.isfinite(start) and math.isfinite(end) \
            else _data_period(paths, start, end)
        split = first + (last - first) * fraction
    about = {"walk_forward": {"split": iso(split), "in_sample": [iso(_finite(start)),
                                                                 iso(split)],
                              "out_of_sample": [iso(split), iso(_finite(end))]}}
    return [("in", start, split), ("out", split, end)], about


def _check_data(paths: Sequence[Path]) -> None:
    if not paths:
        raise SweepError("no data: name recorded files with --data FILE (or in [backtest] "
                         "data)")
    for path in paths:
        try:
            QuoteFileReader(path, DataProblems()).open().close()
        except (OSError, BadDataError) as err:
            raise SweepError(str(err)) from None


def plan(options: SweepOptions, runtime: Runtime
         ) -> tuple[list[PlannedRun], list[str], list[str], dict[str, Any], str]:
    """The runs of the sweep, every one validated; also the swept keys, the periods, what
    the results say about the sweep, and the configuration's text. Raises
    :class:`SweepError` or :class:`arbotd.ConfigError`."""
    config, pm = runtime.config, runtime.pm
    if options.objective not in OBJECTIVES:
        raise SweepError(f"--objective: one of {', '.join(OBJECTIVES)}, got "
                         f"{options.objective!r}")
    if options.random is not None and options.random < 1:
        raise SweepError(f"--random: the number of runs must be at least 1, got "
                         f"{options.random}")
    schema = config.schema
    try:
        from_file = read_params_file(Path(options.params), schema) if options.params else []
        axes = merge_axes(from_file, [parse_axis(g, schema) for g in options.grid])
    except SweepSpecError as err:
        raise SweepError(str(err)) from None
    if not axes:
        raise SweepError("nothing to sweep: give --grid KEY=VALUES or --params FILE.toml")
    sets = parameter_sets(axes, sample=options.random, seed=options.seed)
    text = tomlkit.dumps(config.document)
    problems = []
    for params in sets:
        try:
            config_from_text(text, pm, path=config.path, updates=params)
        except ConfigError as err:
            described = ", ".join(f"{k}={v!r}" for k, v in params.items())
            problems += [f"{p} (in the run {described})" for p in err.problems]
            break  # one set shows what is wrong; the others likely repeat it
    if problems:
        raise SweepError("\n".join(problems))
    paths = [Path(name) for name in (options.data or config["backtest"].data)]
    _check_data(paths)
    periods, about = _periods(options, paths, config["backtest"])
    fingerprint = data_fingerprint(paths)
    base = config.document.unwrap()
    runs = []
    for index, params in enumerate(sets):
        for period, start, end in periods:
            key = run_key(params=params, start=_finite(start), end=_finite(end),
                          data=fingerprint, config=base, strict=options.strict)
            runs.append(PlannedRun(index, params, period, start, end, key))
    about = {"data": [entry[0] for entry in fingerprint], "start": options.start,
             "end": options.end, **about}
    return runs, [a.key for a in axes], [p[0] for p in periods], about, text


QUIET_CLUSTER = {
    # Each worker samples its running task's stack every 10 ms for the dashboard's
    # profile, in its event loop thread: that takes the GIL from the run 100 times a
    # second and costs the worker some 5 % of a core.
    "distributed.worker.profile.enabled": False,
    # Every server (the scheduler, each nanny, each worker) wakes every 20 ms to time its
    # event loop, only to warn when it stalls for seconds; the scheduler's and nannies'
    # live in the sweep's own process.
    "distributed.admin.tick.interval": "1s",
}
"""Dask settings of the sweep's local cluster. With one worker process per core, any
CPU that Dask spends beside the runs is taken from a run: with two busy workers on two
cores, the scheduler's, nannies' and workers' periodic work took 7-8 % of the machine's
CPU (each worker's own share, some 5 % of its core, in its GIL-bound run's process), and
2-3 % with these two settings. Memory monitoring, heartbeats and work stealing keep
their defaults.

A nanny also starts its worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (Dask's
``distributed.nanny.pre-spawn-environ``): glibc then hands freed memory back to the
system at once and maps every large block anew. A run allocates and frees its batches
thousands of times: on a worker so started, a backtest of 1,000,000 quotes took 106,000
page faults (600 in a plain process) and 0.15 s more system time in 2.6 s, and ran 3-11 %
slower. The sweep's own cluster leaves that variable out (:func:`local_cluster`): glibc's
default keeps what a run frees for its next allocations."""

TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"


def local_cluster(workers: int) -> Any:
    """A Dask LocalCluster for a sweep: ``workers`` single-threaded worker processes (the
    runs are pure Python: threads would share one GIL), without a dashboard, with the
    periodic work the sweep has no use for turned down and glibc left to keep the memory
    a run frees for its next allocations (:data:`QUIET_CLUSTER`)."""
    import dask
    from distributed import LocalCluster

    # Read when the scheduler and the nannies are built, and handed by each nanny to
    # its worker process.
    environ = {name: value for name, value in
               dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if name != TRIM_VARIABLE}
    with dask.config.set({**QUIET_CLUSTER, "distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None, silence_logs=logging.ERROR)


def _client(options: SweepOptions) -> tuple[Any, Any]:
    """A Dask client of the cluster at ``--scheduler``, or of a new LocalCluster."""
    from distributed import Client

    # The sweep says what happens run by run; Dask's own chatter (workers starting,
    # closing) would bury it.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if options.scheduler:
        return Client(options.scheduler, timeout="30s"), None
    cluster = local_cluster(options.workers or os.cpu_count() or 1)
    return Client(cluster), cluster


def _entry(run: PlannedRun, outcome: RunOutcome) -> dict[str, Any]:
    return {"key": run.key, "index": run.index, "params": run.params, "period": run.period,
            "start": _finite(run.start), "end": _finite(run.end),
            "error": outcome.error, "elapsed_seconds": round(outcome.elapsed_seconds, 3),
            "metrics": outcome.metrics}


def _progress_line(done: int, total: int, run: PlannedRun, entry: dict[str, Any]) -> str:
    params = " ".join(f"{k}={v}" for k, v in run.params.items())
    period = {"all": "", "in": " in-sample", "out": " out-of-sample"}[run.period]
    metrics = entry.get("metrics")
    what = (f"net {metrics['net_profit']:.8f}, {metrics['total_trades']} trades"
            if metrics else f"failed: {entry.get('error')}")
    return (f"[{done}/{total}] #{run.index + 1}{period} {params}: {what} "
            f"({entry.get('elapsed_seconds', 0):.1f} s)")


def _execute(options: SweepOptions, pending: list[PlannedRun], text: str,
             config_path: Path, results: ResultsLog, done: dict[str, dict[str, Any]],
             total: int, out_dir: Path, err: TextIO) -> dict[str, str]:
    """Run ``pending`` on Dask, logging each as it ends; return the runs that raised."""
    from distributed import as_completed

    failures: dict[str, str] = {}
    if not pending:
        return failures
    data = tuple(str(Path(p).resolve()) for p in (options.data or []))
    client, cluster = _client(options)
    try:
        workers = len(client.scheduler_info().get("workers", {}))
        where = options.scheduler or "a local cluster"
        print(f"sweep: {len(pending)} runs to do ({total - len(pending)} already done) on "
              f"{where} of {workers} workers", file=err, flush=True)
        by_key = {}
        futures = []
        for run in pending:
            task = SweepTask(key=run.key, config_text=text, config_path=str(config_path),
                             overrides=tuple(run.params.items()), data=data,
                             start=run.start, end=run.end, strict=options.strict,
                             keep_result=options.reports)
            future = client.submit(run_task, task, key=f"arbotd-run-{run.key}",
                                   retries=RETRIES, pure=False)
            by_key[future.key] = run
            futures.append(future)
        finished = total - len(pending)
        for future in as_completed(futures):
            run = by_key[future.key]
            try:
                outcome: RunOutcome = future.result()
            except Exception as error:  # raised on every try, or its workers kept dying
                failures[run.key] = f"{type(error).__name__}: {error}"
                entry = {"key": run.key, "error": failures[run.key]}
            else:
                entry = _entry(run, outcome)
                if outcome.result is not None:
                    write_report(outcome.result, out_dir / "runs" / run.key)
                results.append([entry])
                done[run.key] = entry
            future.release()
            finished += 1
            print(_progress_line(finished, total, run, entry), file=err, flush=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return failures


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a batch scheduler's, systemd's) stops the sweep as Ctrl-C does: the
    cluster's worker processes are stopped and finished runs stay in the results."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def command_sweep(runtime: Runtime, options: SweepOptions, *, out: TextIO, err: TextIO
                  ) -> int:
    """``arbotd sweep``: exit status 0, 1 with the reason on ``err``, or 130 when
    interrupted (what finished is kept for ``--resume``)."""
    if options.scheduler and options.workers:
        print("arbotd sweep: --workers sizes the local cluster; with --scheduler the "
              "cluster's own workers run the sweep", file=err)
        return 1
    try:
        runs, keys, periods, about, text = plan(options, runtime)
    except SweepError as error:
        print(f"arbotd sweep: {error}", file=err)
        return 1
    out_dir = Path(options.out)
    results = ResultsLog(out_dir)
    if results.exists() and not options.resume:
        print(f"arbotd sweep: {results.path} holds an earlier sweep's results: --resume "
              "continues it, or choose another --out", file=err)
        return 1
    done = results.read() if options.resume else {}
    pending = [run for run in runs if run.key not in done]
    if options.data:
        data_options = options
    else:
        data_options = attrs.evolve(options, data=tuple(runtime.config["backtest"].data))
    started = time.perf_counter()
    try:
        with _terminate_as_interrupt():
            failures = _execute(data_options, pending, text, runtime.config.path, results,
                                done, len(runs), out_dir, err)
    except KeyboardInterrupt:
        finished = sum(1 for run in runs if run.key in results.read())
        print(f"\narbotd sweep: interrupted; {finished} of {len(runs)} runs are in "
              f"{results.path}: the same command with --resume runs the rest", file=err)
        return 130
    sets: dict[int, tuple[int, dict[str, Any], dict[str, dict[str, Any]]]] = {}
    for run in runs:
        entry = done.get(run.key) or {"key": run.key, "error": failures.get(run.key),
                                      "metrics": None}
        sets.setdefault(run.index, (run.index, run.params, {}))[2][run.period] = entry
    ranked = rank(list(sets.values()), options.objective, periods[0])
    print(f"Sweep: {len(sets)} parameter sets x {len(periods)} period"
          f"{'s' * (len(periods) > 1)}, ranked by {options.objective}"
          f"{' in sample' if periods[0] == 'in' else ''} "
          f"({time.perf_counter() - started:.1f} s)", file=out)
    print(format_table(ranked, keys, options.objective, periods), file=out)
    if periods[0] == "in" and ranked:
        best = ranked[0]
        out_rank = sorted(ranked, key=lambda r: (r.scores.get("out") is None,
                                                 -(r.scores.get("out") or 0.0), r.index))
        place = next(i for i, r in enumerate(out_rank, 1) if r.index == best.index)
        print(f"\n  chosen in sample: {', '.join(f'{k}={v}' for k, v in best.params.items())}"
              f"; out of sample it ranks {place} of {len(ranked)} "
              f"({options.objective} {best.scores.get('in')} in, "
              f"{best.scores.get('out')} out)", file=out)
    files = write_results(out_dir, ranked, keys, objective=options.objective,
                          periods=periods, about=about)
    print(f"\n  results: {', '.join(str(p) for p in [*files, results.path])}", file=out)
    if failures:
        print(f"arbotd sweep: {len(failures)} runs failed (not in {results.path}: --resume "
              "tries them again)", file=err)
        return 1
    return 0
