"""Replaying quotes into a backtest's runtime, in virtual time.

The backtest runs in a ``trio.run`` of its own with a ``MockClock`` (autojump threshold
0), and the runtime's clock is a :class:`VirtualClock` that follows the replayed quotes.
Before a quote is delivered, trio time is moved to the quote's ``local_ts``:

- with no trade in flight and no timer due by the quote, by ``MockClock.jump``: nothing
  can happen in between, and a jump costs far less than a trip through the scheduler;
- with trades in flight, or a timer due by the quote (a periodic task's: the inventory
  watch once a minute), by ``await trio.sleep_until``: the scheduler then wakes every
  task whose deadline comes first, at that deadline (a paper fill after its fill delay, a
  retry, the watch), so each sees the book and the balances as they were at its virtual
  moment. A fill due at the same instant as a quote happens before the quote is
  delivered, on every run.

Quotes go to ``engine.on_quote`` synchronously, as a feed would hand them; the session
yields to the scheduler once per batch (and whenever a trade is in flight or a timer is
due), so quote age, cool-downs, fill delays, trend windows and daily limits all run on
replayed time. Each batch's quiet quotes (:mod:`arbotd.batch`: no strategy would act on
them) only go into the book, in runs up to the next moment another task must run
(a timer due, a trade a quote just started). Nothing depends on wall
time, on how fast the machine is or on how the quotes are batched: the same input and
configuration give the same signals, trades and reports on every run.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter
from typing import Any

import attrs
import numpy as np
import trio
import trio.testing

from arbotd import USD_ASSETS, FeedStatus, Quote, QuoteSink, Runtime, split_symbol, to_decimal
from arbotd.fx import rolling_premium_windows, venue_conversions

__all__ = ["BacktestCancelled", "ReplaySession", "ReplayVenue", "VirtualClock"]

log = logging.getLogger("arbotd_replay")

_exchange_of = attrgetter("exchange")
_symbol_of = attrgetter("symbol")
_received_ts_of = attrgetter("received_ts")


class BacktestCancelled(Exception):
    """The backtest was asked to stop (the daemon is shutting down)."""


class VirtualClock:
    """``runtime.clock`` of a backtest: wall time in replayed seconds.

    While quotes are being delivered it is *pinned* to the quote's ``local_ts`` exactly
    (so a quote delivered "now" has age 0, as it had when it was received); otherwise it
    is ``epoch + trio.current_time()``, which the session keeps equal to the replayed
    time. Pinning also spares a call into trio per quote.
    """

    __slots__ = ("epoch", "pinned")

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch
        self.pinned: float | None = None

    def __call__(self) -> float:
        pinned = self.pinned
        return pinned if pinned is not None else self.epoch + trio.current_time()


@attrs.define(eq=True)
class ReplayVenue:
    """An exchange present in the replayed data, as an ``arbotd.ExchangeAdapter``.

    Its feed task only keeps the venue "connected": the session delivers the quotes of
    every venue itself, because only one loop can keep them in time order across venues.
    """

    name: str
    taker_fee: float
    premium_baseline: float = 0.0
    # A venue quoted in another currency (arbotd.fx): what the data or its plugin says.
    quote_currency: str | None = None
    rate_symbol: str | None = None
    rate_max_age_seconds: float = 5.0
    premium_mode: str = "fixed"
    premium_window_seconds: float = 1800.0

    async def stream_quotes(self, symbols: Any, sink: QuoteSink, *,
                            task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        sink.on_feed_state(self.name, True)
        task_status.started()
        await trio.sleep_forever()

    def feed_status(self) -> FeedStatus:
        return FeedStatus(connected=True, latency_ms=None)


@attrs.frozen
class VenueTerms:
    """The fee and premium a venue of the data gets, and where they came from."""

    taker_fee: float
    premium_baseline: float
    source: str


class ReplaySession:
    """One backtest's replay: the venues of the data and the loop that feeds them.

    ``terms`` gives each venue's fee and premium: what an enabled plugin's adapter of
    that name has, else an ``[exchanges.<name>]`` table's ``taker_fee`` and
    ``premium_baseline``, else ``default_taker_fee`` (filled in by the plugin's
    ``register_exchanges`` wrapper).
    """

    def __init__(
        self,
        *,
        balance: float,
        coin_balance_usd: float,
        seed: int,
        default_taker_fee: float,
        progress: Callable[[int, float], None] | None = None,
        source_progress: Callable[[], float] = lambda: 0.0,
        cancel: threading.Event | None = None,
    ) -> None:
        self.balance = balance
        self.coin_balance_usd = coin_balance_usd
        self.seed = seed
        self.default_taker_fee = default_taker_fee
        self.progress = progress
        self.source_progress = source_progress
        self.cancel = cancel
        self.terms: dict[str, VenueTerms] = {}
        self.known_terms: dict[str, VenueTerms] = {}
        self.known_adapters: dict[str, Any] = {}
        self.venues: dict[str, ReplayVenue] = {}
        self.first_prices: dict[str, float] = {}
        # Venues whose data holds a rate market (USDTKRW): their quotes are in another
        # currency, converted as the engine does live; the first rate of each currency
        # funds their paper accounts.
        self.rate_markets: dict[str, str] = {}
        self.first_rates: dict[str, float] = {}
        self.quotes = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.runtime: Runtime | None = None
        self.clock: VirtualClock | None = None
        self._config: Any = None
        self.store: Any = None  # the ResultStore the backtest's runtime gets

    # --- venues and accounts ------------------------------------------------------------

    def learn(self, batch: list[Quote]) -> None:
        """Note the exchanges and first prices of the first batch, before the runtime is
        assembled (its venues are the exchanges seen so far)."""
        for quote in batch:
            if self._note_first_price(quote) and quote.exchange not in self.venues:
                self.venues[quote.exchange] = ReplayVenue(quote.exchange, 0.0)

    def _note_first_price(self, quote: Quote) -> bool:
        """Keep the first mid of ``quote``'s symbol, or, for a rate market (a symbol
        pricing a USD stablecoin in another currency, such as USDTKRW), note that its
        venue quotes in that currency (whose prices are no reference). ``False`` for a
        quote that says nothing of its venue (there are none yet)."""
        try:
            priced, currency = split_symbol(quote.symbol)
        except ValueError:
            return True
        if priced in USD_ASSETS and currency not in USD_ASSETS:
            self.rate_markets.setdefault(quote.exchange, quote.symbol)
            self.first_rates.setdefault(currency, (quote.bid + quote.ask) / 2)
        elif quote.exchange not in self.rate_markets:
            self.first_prices.setdefault(quote.symbol, (quote.bid + quote.ask) / 2)
        return True

    def adapters(self, others: Iterable[Any], config: Any) -> list[ReplayVenue]:
        """The replay venues, their terms taken from ``others`` (what the enabled plugins
        would have provided) or the configuration. Called by ``register_exchanges``."""
        for adapter in others:
            self.known_terms.setdefault(adapter.name, VenueTerms(
                float(adapter.taker_fee), float(getattr(adapter, "premium_baseline", 0.0)),
                f"the enabled {adapter.name} exchange"))
            self.known_adapters.setdefault(adapter.name, adapter)
        self._config = config
        for name in list(self.venues):
            self.venues[name] = self._venue(name)
        return list(self.venues.values())

    def _venue(self, name: str) -> ReplayVenue:
        terms = self.known_terms.get(name)
        if terms is None:
            section = self._config.get(f"exchanges.{name}") if self._config else None
            fee = getattr(section, "taker_fee", None)
            if isinstance(fee, int | float):
                terms = VenueTerms(float(fee), float(getattr(section, "premium_baseline", 0.0)),
                                   f"[exchanges.{name}]")
            else:
                terms = VenueTerms(self.default_taker_fee, 0.0, "[backtest] default_taker_fee")
        self.terms[name] = terms
        log.info("backtest venue %s: taker fee %g from %s", name, terms.taker_fee, terms.source)
        return ReplayVenue(name, terms.taker_fee, terms.premium_baseline,
                           **self._currency_terms(name))

    def _currency_terms(self, name: str) -> dict[str, Any]:
        """How a venue quoted in another currency is converted and its premium followed:
        as the enabled plugin's adapter of that name says, else from its data (a rate
        market among its symbols; the premium baseline then rolling over 30 minutes)."""
        adapter = self.known_adapters.get(name)
        if adapter is not None and getattr(adapter, "quote_currency", None):
            return {key: getattr(adapter, key) for key in (
                "quote_currency", "rate_symbol", "rate_max_age_seconds", "premium_mode",
                "premium_window_seconds") if hasattr(adapter, key)}
        rate_symbol = self.rate_markets.get(name)
        if rate_symbol is None:
            return {}
        log.info("backtest venue %s quotes in %s: converted at its %s quotes, premium "
                 "baseline rolling", name, split_symbol(rate_symbol)[1], rate_symbol)
        return {"quote_currency": split_symbol(rate_symbol)[1], "rate_symbol": rate_symbol,
                "premium_mode": "rolling"}

    def quote_balances(self, symbols: Iterable[str]) -> dict[str, float]:
        """``balance`` of each quote currency of ``symbols`` (the strategies'): the paper
        executor adds ``coin_balance_usd`` worth of each coin at its first mid price
        (``first_prices`` are its reference prices)."""
        return {split_symbol(symbol)[1]: self.balance for symbol in symbols}

    def _discover(self, batch: list[Quote]) -> None:
        """Set up exchanges and coins the data shows for the first time: a new venue
        (usable, funded), a new coin (funded on every venue at its first price)."""
        runtime = self.runtime
        assert runtime is not None and runtime.engine is not None
        exchanges, symbols = _names_of(batch)
        new_exchanges = exchanges.difference(self.venues)
        new_symbols = symbols.difference(self.first_prices, self.rate_markets.values())
        if new_symbols:
            for quote in batch:
                if quote.symbol in new_symbols:
                    self._note_first_price(quote)
            self._fund_coins(sorted(new_symbols.intersection(self.first_prices)))
        if new_exchanges:
            for name in sorted(new_exchanges):
                self.venues[name] = self._venue(name)
            engine = runtime.engine
            venues = self.venues
            engine.set_venues({n: v.taker_fee for n, v in venues.items()},
                              {n: v.premium_baseline for n, v in venues.items()},
                              venue_conversions(venues.values()),
                              rolling_premium_windows(venues.values()))
            for name in sorted(new_exchanges):
                engine.on_feed_state(name, True)
            if runtime.feeds is not None:
                runtime.feeds.configure(dict(self.venues), runtime.feeds.symbols)
            executor = self._executor()
            if executor is not None and callable(getattr(executor, "start", None)):
                executor.start()

    def _executor(self) -> Any:
        control = self.runtime.control if self.runtime is not None else None
        return control.executors.get("backtest") if control is not None else None

    def _fund_coins(self, symbols: list[str]) -> None:
        runtime = self.runtime
        assert runtime is not None
        executor = self._executor()
        if executor is None:
            return
        references = getattr(executor, "reference_prices", None)
        if isinstance(references, dict):
            references.update({s: self.first_prices[s] for s in symbols})
        traded = {s for strategy in runtime.strategies for s in strategy.symbols}
        funded = sorted(getattr(executor, "funded", ()))
        for symbol in symbols:
            if symbol not in traded or not self.coin_balance_usd:
                continue
            base, _ = split_symbol(symbol)
            amount = to_decimal(round(self.coin_balance_usd / self.first_prices[symbol], 8))
            for venue in funded:
                if runtime.ledger.total(venue, base) == 0:
                    runtime.ledger.fund(venue, base, amount)
            log.info("%s first quoted: paper accounts get %s %s each", symbol, amount, base)

    # --- the replay loop ----------------------------------------------------------------------

    async def replay(self, batches: Iterator[list[Quote]], mock_clock: Any) -> None:
        """Deliver every quote of ``batches`` to the runtime's engine in virtual time
        (see the module docstring). Raises :class:`BacktestCancelled` when ``cancel`` is
        set."""
        runtime, clock = self.runtime, self.clock
        assert runtime is not None and clock is not None
        assert runtime.engine is not None
        engine = runtime.engine
        on_quote = engine.on_quote
        on_quiet_quote = engine.on_quiet_quote
        on_quiet_rows = engine.on_quiet_rows
        jump = mock_clock.jump
        current_time = trio.current_time
        epoch = clock.epoch
        now = -math.inf
        sleep_until = trio.sleep_until
        wait_all_tasks_blocked = trio.testing.wait_all_tasks_blocked
        count = 0
        # The runtime's tasks start at the first quote's time (a periodic one then runs at
        # the same replayed times however the quotes are batched). From then on, time is
        # never moved past another task's timer (a paper fill's delay, the inventory
        # watch once a minute), nor on while a task is ready to run (a trade a quote just
        # started), without letting that task run first: ``deadline`` is the replayed
        # time by which the scheduler must be let in.
        await wait_all_tasks_blocked()
        deadline = _next_deadline(epoch)
        signals = engine.signals_detected
        for batch in batches:
            if self.first_ts is None:
                self.first_ts = batch[0].received_ts
            self._discover(batch)
            # The quotes no strategy would act on, found for the whole batch at once, go
            # only into the book (arbotd.batch), a run at a time up to the next deadline;
            # the answer holds while nothing but the batch's quotes changes the book.
            found = engine.quiet_rows(batch)
            quiet = runs = None
            if found is not None:
                quiet = found.tolist()
                runs = None if engine.quiet_notes else _run_ends(found)
            received = _received_of(batch)
            # A reader's batch builds its quotes when asked (arbotd.batch.QuoteBatch):
            # all of them at once unless runs of quiet quotes go to the book, which only
            # keeps the last of each venue and symbol.
            quotes = batch if runs is not None else _built(batch)
            revision = engine.book_revision
            index, size = 0, len(batch)
            while index < size:
                if runs is not None:
                    end = runs[index]
                    if end > index and received[end - 1] >= deadline:
                        end = bisect.bisect_left(received, deadline, index, end)
                    if end > index:
                        on_quiet_rows(batch, index, end)
                        index = end
                        continue
                quote = quotes[index]
                index += 1
                stamp = quote.received_ts
                if stamp != now:
                    target = stamp - epoch
                    if stamp >= deadline:
                        # A timer due by this quote, or a task ready to run: let them go
                        # first, in order, at their virtual times, so each sees the book
                        # and the balances as they were then. A timer due at the quote's
                        # very instant (a fill delay that is a multiple of the feed's
                        # tick) wakes in the same scheduler batch as this task, in an
                        # order trio randomises: waiting until every other task is
                        # blocked again makes it go first, every run.
                        clock.pinned = None
                        await sleep_until(target)
                        await wait_all_tasks_blocked()
                        deadline = _next_deadline(epoch)
                        if engine.book_revision != revision:
                            quiet = runs = None
                    step = target - current_time()
                    if step > 0:
                        jump(step)
                    clock.pinned = now = stamp
                if quiet is not None and quiet[index - 1]:
                    on_quiet_quote(quote)
                    continue
                on_quote(quote)
                if engine.signals_detected != signals:
                    # The quote opened a signal: whatever it started (a trade) runs
                    # before time moves on.
                    signals = engine.signals_detected
                    if trio.lowlevel.current_statistics().tasks_runnable:
                        deadline = -math.inf
                if quiet is not None and engine.book_revision != revision:
                    quiet = runs = None
            stamp = received[-1]
            if stamp != now:
                # The batch ended in a run of quiet quotes: time moves to its last.
                step = stamp - epoch - current_time()
                if step > 0:
                    jump(step)
                clock.pinned = now = stamp
            count += len(batch)
            self.quotes = count
            self.last_ts = now
            # Once a batch: the trades this batch started begin, timers due run, and
            # the progress and cancel flag are looked at. Not a bare checkpoint: this
            # task could be resumed in the same scheduler batch as a trade its last
            # quote started and, if trio ran it first, deliver the next quotes while
            # that trade waited unseen (a task of the running batch is not counted as
            # runnable), so its fills would start late on some runs only.
            clock.pinned = None
            await wait_all_tasks_blocked()
            deadline = _next_deadline(epoch)
            clock.pinned = now
            if self.cancel is not None and self.cancel.is_set():
                clock.pinned = None
                raise BacktestCancelled("the backtest was cancelled")
            if self.progress is not None:
                self.progress(count, self.source_progress())
        clock.pinned = None


def _names_of(batch: list[Quote]) -> tuple[set[str], set[str]]:
    """The exchanges and the symbols of ``batch``: from a reader's columns when it has
    them (:class:`arbotd.batch.QuoteBatch`), else quote by quote."""
    columns = getattr(batch, "columns", None)
    if columns is None:
        return set(map(_exchange_of, batch)), set(map(_symbol_of, batch))
    exchanges, exchange_codes, symbols, symbol_codes = columns[:4]
    return ({exchanges[code] for code in np.unique(exchange_codes).tolist()},
            {symbols[code] for code in np.unique(symbol_codes).tolist()})


def _received_of(batch: Sequence[Quote]) -> Sequence[float]:
    """Each quote's ``received_ts``: a reader's own list when it has one."""
    received = getattr(batch, "received", None)
    return received if received is not None else list(map(_received_ts_of, batch))


def _built(batch: Sequence[Quote]) -> Sequence[Quote]:
    """``batch`` with every quote built (a :class:`arbotd.batch.QuoteBatch` builds
    them all at once, faster than one at a time)."""
    quotes = getattr(batch, "quotes", None)
    return quotes() if callable(quotes) else batch


def _next_deadline(epoch: float) -> float:
    """The replayed time of the next timer due (infinity when none), a microsecond early
    so that rounding never lets one be passed: at worst the replay stops to let tasks
    run when none is due yet."""
    due_in = trio.lowlevel.current_statistics().seconds_to_next_deadline
    return epoch + trio.current_time() + due_in - 1e-6


def _run_ends(quiet: np.ndarray) -> list[int]:
    """For each row, where the run of quiet rows starting there ends: the index of the
    next row that is not quiet (the row itself when it is not), or the batch's size."""
    size = len(quiet)
    positions = np.where(quiet, size, np.arange(size))
    return np.minimum.accumulate(positions[::-1])[::-1].tolist()
