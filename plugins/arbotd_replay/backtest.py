"""One backtest: a runtime assembled by the plugins as the daemon's is, fed by a
:class:`~arbotd_replay.session.ReplaySession` in virtual time, in a ``trio.run`` of its
own.

The plugin's hook wrappers (see :mod:`arbotd_replay.plugin`) recognise the backtest's
runtime by ``runtime.plugin_state["replay.session"]`` and give it the replay venues, a
:class:`~arbotd_replay.stores.ResultStore` and a paper executor in ``backtest`` mode;
strategies and risk checks are whatever the enabled plugins provide, third-party ones
included. Nothing is written anywhere: the result is returned.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import trio
import trio.testing

from arbotd import (
    USD_ASSETS,
    ArbotError,
    Config,
    PluginManager,
    Quote,
    Runtime,
    Signal,
    Trade,
    split_symbol,
)
from arbotd.inventory import inventory_report
from arbotd_replay.metrics import compute_metrics
from arbotd_replay.quotefile import DataProblems
from arbotd_replay.session import ReplaySession, VirtualClock
from arbotd_replay.stores import ResultStore

__all__ = [
    "SESSION_KEY",
    "BacktestError",
    "BacktestOptions",
    "BacktestResult",
    "run_backtest",
    "single_error",
]

log = logging.getLogger("arbotd_replay")

SESSION_KEY = "replay.session"
"""``runtime.plugin_state`` key of a backtest's session: it marks the backtest's
runtime for the plugin's hook wrappers."""


class BacktestError(ArbotError):
    """A backtest could not run (no data, no executor for backtest mode ...)."""


@attrs.frozen
class BacktestOptions:
    """What a backtest may change from ``[backtest]``."""

    balance: float = 10_000.0
    coin_balance_usd: float = 10_000.0
    seed: int = 42
    default_taker_fee: float = 0.001

    @classmethod
    def from_config(cls, section: Any, **overrides: Any) -> BacktestOptions:
        values = {"balance": section.balance, "coin_balance_usd": section.coin_balance_usd,
                  "seed": section.seed, "default_taker_fee": section.default_taker_fee}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@attrs.frozen
class BacktestResult:
    """Everything a backtest produced. ``metrics`` is :func:`compute_metrics`'s dict;
    ``trades`` are final, by id; ``signals`` every opportunity found, executed or not."""

    metrics: dict[str, Any]
    trades: tuple[Trade, ...]
    signals: tuple[Signal, ...]
    problems: tuple[str, ...]
    elapsed_seconds: float
    #: ``report`` (:func:`arbotd.inventory.inventory_report` at the end: shares, drift,
    #: the plan), ``max_drift`` (asset -> venue -> the largest drift seen) and
    #: ``history`` (``(time, asset, venue, share, drift)`` once a minute).
    inventory: dict[str, Any] = attrs.field(factory=dict)

    @property
    def quotes_per_second(self) -> float:
        return self.metrics["quotes"] / self.elapsed_seconds if self.elapsed_seconds else 0.0


def _usd_prices(first_prices: dict[str, float]) -> dict[str, float]:
    prices: dict[str, float] = {}
    for symbol, price in first_prices.items():
        try:
            base, quote = split_symbol(symbol)
        except ValueError:
            continue
        if quote in USD_ASSETS:
            prices.setdefault(base, price)
    return prices


def run_backtest(
    pm: PluginManager,
    config: Config,
    batches: Iterator[list[Quote]],
    *,
    options: BacktestOptions,
    problems: DataProblems,
    progress: Callable[[int, float], None] | None = None,
    source_progress: Callable[[], float] = lambda: 0.0,
    cancel: threading.Event | None = None,
) -> BacktestResult:
    """Replay ``batches`` through the plugins' strategies, risk checks and a paper
    executor in ``backtest`` mode, and return the result. Blocking (it runs its own
    ``trio.run``): call it from a thread of its own when an event loop is running.
    Raises :class:`BacktestError`, or :class:`~arbotd_replay.quotefile.BadDataError` with
    ``problems.strict``. ``batches`` is closed (if it can be) before this returns."""
    started = time.perf_counter()
    # A replay allocates millions of short-lived quotes, and each full collection of the
    # garbage collector would walk every object the process held before (the plugins'
    # modules and the daemon's state: hundreds of thousands) for nothing: a fifth of a
    # backtest's time. Those are set aside for the backtest (gc.freeze), and
    # collectable again once it ends, however it ends.
    gc.freeze()
    try:
        return _run(pm, config, iter(batches), options=options, problems=problems,
                    progress=progress, source_progress=source_progress, cancel=cancel,
                    started=started)
    finally:
        gc.unfreeze()
        # Ended here, in the thread that read it, however the backtest ended: a
        # storage's reading holds a connection of this thread, and left to the
        # garbage collector it would be closed in whichever thread drops the last
        # reference (the event loop's, for the API's jobs), leaving this one open.
        close = getattr(batches, "close", None)
        if callable(close):
            close()


def _run(
    pm: PluginManager,
    config: Config,
    batches: Iterator[list[Quote]],
    *,
    options: BacktestOptions,
    problems: DataProblems,
    progress: Callable[[int, float], None] | None,
    source_progress: Callable[[], float],
    cancel: threading.Event | None,
    started: float,
) -> BacktestResult:
    first = next((batch for batch in batches if batch), None)
    if first is None:
        problems.finish()
        raise BacktestError("no quotes to replay" + (
            f" ({problems.total} bad rows skipped)" if problems.total else ""))
    session = ReplaySession(
        balance=options.balance,
        coin_balance_usd=options.coin_balance_usd,
        seed=options.seed,
        default_taker_fee=options.default_taker_fee,
        progress=progress,
        source_progress=source_progress,
        cancel=cancel,
    )
    session.learn(first)
    store = session.store = ResultStore()
    mock_clock = trio.testing.MockClock(autojump_threshold=0)
    built: list[Runtime] = []

    async def main() -> None:
        runtime = Runtime(config, pm)
        built.append(runtime)
        runtime.plugin_state[SESSION_KEY] = session
        session.runtime = runtime
        session.clock = runtime.clock = VirtualClock(  # type: ignore[assignment]
            first[0].received_ts - trio.current_time())
        runtime.configure_plugins()
        runtime.assemble()
        engine, control = runtime.engine, runtime.control
        assert engine is not None and control is not None
        engine.observe = None
        engine.inventory.keep_history = True
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run_core)
            try:
                for name in session.venues:
                    engine.on_feed_state(name, True)
                control.start("backtest")
                await session.replay(itertools.chain([first], batches), mock_clock)
            finally:
                runtime.shutdown_requested.set()

    try:
        trio.run(main, clock=mock_clock)
    except BaseExceptionGroup as group:
        raise single_error(group) from None
    finally:
        problems.finish()
    runtime = built[0]
    assert runtime.engine is not None and session.first_ts is not None
    trades = tuple(sorted(store.trades.values(), key=lambda t: t.id))
    signals = tuple(store.signals)
    prices = _usd_prices(session.first_prices)
    starting_equity = runtime.ledger.value_usd(prices.get, starting=True)
    metrics = compute_metrics(
        trades=trades,
        signals=len(signals),
        signals_executed=sum(1 for s in signals if s.executed),
        quotes=session.quotes,
        first_ts=session.first_ts,
        last_ts=session.last_ts if session.last_ts is not None else session.first_ts,
        starting_equity=starting_equity,
        exchanges={name: terms.taker_fee for name, terms in session.terms.items()},
        symbols=sorted(session.first_prices),
        rejections=runtime.engine.rejection_counts(),
        bad_rows=dict(problems.counts),
    )
    traded = {s for strategy in runtime.strategies for s in strategy.symbols}
    missing = sorted(traded - set(session.first_prices))
    if missing:
        log.warning("the strategies trade %s, which the data never quotes",
                    ", ".join(missing))
    unused = sorted(set(session.first_prices) - traded)
    if unused:
        log.info("the data quotes %s, which no strategy trades", ", ".join(unused))
    inventory = runtime.engine.inventory
    inventory.price_of = prices.get
    inventory.sample(session.last_ts if session.last_ts is not None else session.first_ts)
    arbitrage = config.get("arbitrage")
    report = inventory_report(inventory, skew=getattr(arbitrage, "inventory_skew", 0.0))
    return BacktestResult(metrics, trades, signals, tuple(problems.messages),
                          time.perf_counter() - started,
                          inventory={"report": report, "max_drift": inventory.max_drifts(),
                                     "history": inventory.history})


def single_error(group: BaseExceptionGroup) -> BaseException:
    """The error inside trio's nursery wrapping, when there is one."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error

