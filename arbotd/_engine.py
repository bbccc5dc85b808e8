"""The engine: latest quotes in, signals out.

Feeds call :meth:`Engine.on_quote` synchronously for every quote (no channel hop: a trio
channel costs ~18 µs per item, more than the whole decision). The engine stores the quote
as the latest of its (symbol, exchange), publishes it on the bus (coalesced per
subscriber), and runs the strategies on that symbol only. Signals are numbered, published,
and handed to the signal handler (the control facade), which decides whether to trade.

Validity belongs to the data, not to the connection. A venue's feed tells the engine when
it goes down (``on_feed_state(venue, False)``: a disconnect, a stall, a sequence gap) and
when it is connected again (``on_feed_state(venue, True)``). Going down forgets every quote
of the venue, so nothing from before the outage is ever used again: not for signals, not
to price an order (:meth:`Engine.fresh_quote`), not to value balances
(:meth:`Engine.price_usd`). Connecting only *arms* the venue: it becomes usable with its
first quote afterwards, and each of its symbols is in the book again only once a quote of
it has arrived. So a feed whose socket reconnects but whose data does not flow is never
traded on, whatever the adapter says about its socket. A feed that keeps order books
tells the engine of one symbol whose book fell out of sync (``forget_symbol(venue,
symbol)``): that symbol's quote is forgotten until its book is in sync again, and the
venue's other symbols go on.

A venue quoted in another currency (:mod:`arbotd.fx`) delivers its rate market's quotes
too: the engine keeps the latest as the venue's rate (recorded, never in the book) and
converts the venue's other quotes before they enter the book; a quote without a usable
rate is not used (counted in ``unconverted``). Venues whose premium baseline is rolling
are sampled as their quotes arrive, and the strategies' ``market.premium`` follows.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from arbotd._bus import Bus
from arbotd._histogram import DECISION_LATENCY_BOUNDS, Histogram
from arbotd._interfaces import Strategy
from arbotd._ledger import Ledger
from arbotd._model import Quote, Signal
from arbotd.fx import Conversion, RollingPremium, convert_quote, order_rate
from arbotd.inventory import Inventory

if TYPE_CHECKING:  # numpy is imported by a replay's first batch (arbotd.batch)
    import numpy as np

__all__ = ["Engine", "Market"]

log = logging.getLogger(__name__)

_HOUR = 3600.0
# One quote in 64 is timed from its receipt to the decision, for GET /metrics: timing
# every quote would cost a clock read and a histogram update per quote. A bit mask, so
# that choosing costs one "and".
_LATENCY_SAMPLE_MASK = 64 - 1
# A run of quiet quotes shorter than this is built whole: few of its quotes are replaced
# by a later one of the same venue and symbol, and picking out those the book keeps costs
# a few array operations (measured: 16 to 128 within 2 %, 4 or less 4 % slower).
_BUILD_ALL_BELOW = 64


class Market:
    """The :class:`~arbotd._interfaces.MarketView` the engine gives strategies."""

    __slots__ = (
        "_ledger", "conversions", "fees", "inventory", "now", "premium", "rates", "rejections",
        "trading", "usable")

    def __init__(self, ledger: Ledger, inventory: Inventory | None = None) -> None:
        self.now = 0.0
        self.trading = False
        self.fees: dict[str, float] = {}
        self.premium: dict[str, float] = {}
        self.usable: dict[str, bool] = {}
        self.rejections: collections.Counter[str] = collections.Counter()
        self._ledger = ledger
        self.inventory = inventory if inventory is not None else Inventory(ledger)
        # The engine's venues quoted in another currency and their latest rates.
        self.conversions: dict[str, Conversion] = {}
        self.rates: dict[str, Quote] = {}

    def available(self, exchange: str, asset: str) -> float:
        conversions = self.conversions
        if conversions and exchange in conversions:
            conversion = conversions[exchange]
            if asset == conversion.priced:
                # A venue quoted in KRW holds KRW: what it can spend, in USDT, is its
                # KRW at the rate its asks were converted at.
                rate = self.rates.get(exchange)
                if rate is None or rate.bid <= 0:
                    return 0.0
                return self._ledger.available(exchange, conversion.currency) / rate.bid
        return self._ledger.available(exchange, asset)

    def reject(self, reason: str) -> None:
        self.rejections[reason] += 1


class Engine:
    """Keeps the book of best quotes and runs the strategies on it."""

    #: Replays: decide each batch's quiet quotes at once (:meth:`quiet_rows`). Off only
    #: to compare: the results are the same either way.
    batch_decisions = True

    def __init__(
        self,
        *,
        strategies: Sequence[Strategy],
        bus: Bus,
        ledger: Ledger,
        clock: Callable[[], float] = time.time,
        on_signal: Callable[[Signal], Signal] | None = None,
        on_signal_recorded: Callable[[Signal], None] | None = None,
        observe: Callable[[Quote], None] | None = None,
    ) -> None:
        self.strategies = list(strategies)
        self.bus = bus
        self.ledger = ledger
        self.clock = clock
        self.market = Market(ledger)
        # The traded assets over the venues (arbitrage.inventory_skew, GET
        # /api/v1/inventory), valued at this engine's prices.
        self.inventory = self.market.inventory
        self.inventory.price_of = self.price_usd
        self.inventory.rates = self.market.rates
        self.book: dict[str, dict[str, Quote]] = {}
        self.on_signal = on_signal
        self.on_signal_recorded = on_signal_recorded
        self.observe = observe
        self.next_signal_id = 1
        self.quotes_processed = 0
        # Counts changes to the book other than new quotes (venues or symbols removed), so
        # that ``(quotes_processed, book_revision)`` identifies the book's content.
        self.book_revision = 0
        self.signals_detected = 0
        # Venues connected again whose first quote has not come yet (see the module
        # docstring); empty but for the moments after a connect.
        self._awaiting_data: set[str] = set()
        self._signal_times: collections.deque[float] = collections.deque()
        # Venues quoted in another currency (empty for most daemons: one truth test per
        # quote), the latest rate quote of each, and quotes dropped for want of a rate.
        self._conversions: dict[str, Conversion] = {}
        self.rates: dict[str, Quote] = self.market.rates
        self.unconverted: collections.Counter[tuple[str, str]] = collections.Counter()
        # Venues whose premium baseline follows the observed premium (empty for most).
        self.rolling_premium = RollingPremium()
        self._rolling: dict[str, float] = {}
        self.last_signals: collections.deque[Signal] = collections.deque(maxlen=1000)
        # For GET /metrics: quotes per venue, and the sampled receipt-to-decision time.
        self.quote_counts: dict[str, int] = {}
        self.decision_latency = Histogram(DECISION_LATENCY_BOUNDS)
        self._quiet_notes: list[Callable[[Quote, Any], None]] = []
        self._quiet_row_notes: list[Callable[[Sequence[Quote], int, int], None] | None] = []

    # --- the hot path -----------------------------------------------------------------

    def on_quote(self, quote: Quote) -> None:
        self.quotes_processed += 1
        try:
            self.quote_counts[quote.exchange] += 1  # a plain dict: a Counter costs 3x
        except KeyError:
            self.quote_counts[quote.exchange] = 1
        # Costs one truth test of an empty set per quote, except just after a connect.
        awaiting = self._awaiting_data
        if awaiting and quote.exchange in awaiting:
            self._data_arrived(quote.exchange)
        observe = self.observe
        conversions = self._conversions
        if conversions and quote.exchange in conversions:
            # Recorded as the venue sent it (with its rate market's quotes), so that a
            # replay converts it again.
            if observe is not None:
                observe(quote)
                observe = None
            converted = self._convert(quote, conversions[quote.exchange])
            if converted is None:
                return
            quote = converted
        quotes = self.book.get(quote.symbol)
        if quotes is None:
            quotes = self.book[quote.symbol] = {}
        quotes[quote.exchange] = quote
        self.bus.publish_price(quote)
        if observe is not None:
            observe(quote)
        rolling = self._rolling
        if rolling and quote.exchange in rolling:
            self._sample_premium(quote, quotes)
        market = self.market
        market.now = self.clock()
        for strategy in self.strategies:
            signals = strategy.evaluate(quote, quotes, market)
            if signals:
                for signal in signals:
                    self._emit(signal)
        if not self.quotes_processed & _LATENCY_SAMPLE_MASK:
            self.decision_latency.observe(self.clock() - quote.received_ts)

    # --- replayed batches (arbotd.batch) -----------------------------------------------

    def quiet_rows(self, batch: Sequence[Quote]) -> np.ndarray | None:
        """For a batch about to be delivered quote by quote (a replay): which quotes
        every strategy would turn down whatever else happens (:mod:`arbotd.batch`),
        their rejections counted now. Deliver those with :meth:`on_quiet_quote` and the
        others with :meth:`on_quote`, in order, with nothing else changing the book in
        between (a :attr:`book_revision` that moves ends the answer's use); a venue's
        first quote since it connected is never quiet. ``None`` when it cannot tell for
        this batch: every quote then goes to :meth:`on_quote` (a venue converted from
        another currency, a rolling premium, something observing each quote, price
        subscribers, a strategy that cannot answer, or :attr:`batch_decisions` off)."""
        if not (self.batch_decisions and batch and self.strategies) or (
                self._conversions or self._rolling or self.observe is not None
                or self.bus.has_price_subscribers):
            return None
        import numpy as np

        from arbotd.batch import book_columns, quiet_rows

        view = book_columns(batch, self.book)
        answered = quiet_rows(self.strategies, view, self.market)
        if answered is None:
            return None
        rows, answers = answered
        if self._awaiting_data:
            # A venue's first quote since it connected makes it usable (the strategies
            # answered with it unusable): that quote goes to on_quote.
            rows = rows.copy()
            for index, name in enumerate(view.exchanges):
                if name in self._awaiting_data:
                    rows[np.flatnonzero(view.exchange == index)[:1]] = False
        rejections = self.market.rejections
        for answer in answers:
            for reason, per_row in answer.rejections.items():
                total = int(per_row[rows].sum())
                if total:
                    rejections[reason] += total
        self._quiet_notes = [a.note for a in answers if a.note is not None]
        self._quiet_row_notes = [a.note_rows for a in answers if a.note is not None]
        return rows

    @property
    def quiet_notes(self) -> bool:
        """Whether a strategy asked to see the quiet quotes of the batch one by one
        (:attr:`arbotd.batch.QuietRows.note` without ``note_rows``): then each goes to
        :meth:`on_quiet_quote` at its own time, not in a run to :meth:`on_quiet_rows`."""
        return None in self._quiet_row_notes

    def on_quiet_quote(self, quote: Quote) -> None:
        """:meth:`on_quote` for a quote :meth:`quiet_rows` found quiet: into the book and
        counted, its rejections already counted, no strategy run (and no decision timed:
        none was made)."""
        self.on_quiet_quotes((quote,))
        if self._quiet_notes:
            market = self.market
            market.now = self.clock()
            for note in self._quiet_notes:
                note(quote, market)

    def on_quiet_quotes(self, quotes: Iterable[Quote]) -> None:
        """Each of ``quotes``, found quiet by :meth:`quiet_rows`, into the book and
        counted, between which nothing else runs (a replay's run of quiet quotes); for
        batches without notes (:meth:`on_quiet_quote` adds them)."""
        book = self.book
        counts = self.quote_counts
        processed = 0
        for quote in quotes:
            exchange = quote.exchange
            try:
                book[quote.symbol][exchange] = quote
            except KeyError:
                book[quote.symbol] = {exchange: quote}
            try:
                counts[exchange] += 1
            except KeyError:
                counts[exchange] = 1
            processed += 1
        self.quotes_processed += processed

    def on_quiet_rows(self, batch: Sequence[Quote], start: int, end: int) -> None:
        """:meth:`on_quiet_quotes` of the quotes ``start`` to ``end`` (excluded) of
        ``batch``, and the strategies' notes of them
        (:attr:`arbotd.batch.QuietRows.note_rows`). Of a
        :class:`arbotd.batch.QuoteBatch`, only the quotes the book keeps (each venue's
        last of a symbol) are built, unless one of them is new to the book (the book's
        entries stay in the order they first came)."""
        self._store_quiet_rows(batch, start, end)
        for note_rows in self._quiet_row_notes:
            assert note_rows is not None, "a note without note_rows: quote by quote"
            note_rows(batch, start, end)

    def _store_quiet_rows(self, batch: Sequence[Quote], start: int, end: int) -> None:
        latest = getattr(batch, "latest", None)
        if latest is None or end - start < _BUILD_ALL_BELOW:
            self.on_quiet_quotes(batch[start:end])
            return
        book = self.book
        counts = self.quote_counts
        kept = latest(start, end)
        tallies = batch.tallies(start, end)  # type: ignore[attr-defined]
        for quote in kept:
            if quote.exchange not in book.get(quote.symbol, ()):
                self.on_quiet_quotes(batch[start:end])
                return
        if not counts.keys() >= tallies.keys():
            self.on_quiet_quotes(batch[start:end])
            return
        for quote in kept:
            book[quote.symbol][quote.exchange] = quote
        for exchange, count in tallies.items():
            counts[exchange] += count
        self.quotes_processed += end - start

    def _convert(self, quote: Quote, conversion: Conversion) -> Quote | None:
        """``quote`` converted at its venue's latest rate, or ``None``: it is the rate
        (kept), or there is no usable rate (the venue's quote of the symbol is
        forgotten)."""
        exchange = quote.exchange
        if quote.symbol == conversion.rate_symbol:
            self.rates[exchange] = quote
            return None
        rate = self.rates.get(exchange)
        if rate is not None and quote.received_ts - rate.received_ts <= conversion.max_age:
            return convert_quote(quote, rate)
        self.unconverted[exchange, "rate_missing" if rate is None else "rate_stale"] += 1
        self.forget_symbol(exchange, quote.symbol)
        return None

    def _sample_premium(self, quote: Quote, quotes: Mapping[str, Quote]) -> None:
        baseline = self.rolling_premium.observe(quote, quotes, self.market.usable)
        if baseline is not None and baseline != self.market.premium.get(quote.exchange):
            # A new mapping, not an update in place: strategies index the premiums by the
            # mapping's identity.
            self.market.premium = {**self.market.premium, quote.exchange: baseline}

    def on_feed_state(self, exchange: str, usable: bool, reason: str = "") -> None:
        """``usable=False``: the feed of ``exchange`` is down (disconnected, stale, out of
        sync): it is unusable and its quotes are forgotten. ``usable=True``: it is
        connected (again): it becomes usable with its next quote. Telling a connected
        venue that it is connected changes nothing."""
        market = self.market
        if usable:
            if market.usable.get(exchange) or exchange in self._awaiting_data:
                return
            # Quotes that came while it was down (from a connection of the venue that
            # stayed up, or delivered late) predate this connect: start from nothing.
            self._forget(exchange)
            market.usable[exchange] = False
            self._awaiting_data.add(exchange)
            log.info("%s: connected; usable once fresh market data arrives", exchange)
            return
        self._awaiting_data.discard(exchange)
        was = market.usable.get(exchange)
        market.usable[exchange] = False
        self._forget(exchange)
        if was is False:
            return
        log.warning("%s: market data unusable%s", exchange, f": {reason}" if reason else "")
        self._publish_feed_state(exchange, False, reason)

    def forget_symbol(self, exchange: str, symbol: str) -> None:
        """The book of ``symbol`` on ``exchange`` is out of sync (a gap, a failed checksum,
        a crossed book): forget its quote, so that nothing trades on it until the feed
        delivers one from a book in sync again. The venue stays usable for its other
        symbols."""
        quotes = self.book.get(symbol)
        if quotes is not None and quotes.pop(exchange, None) is not None:
            self.book_revision += 1

    def is_usable(self, exchange: str) -> bool:
        """Whether the market data of ``exchange`` may be used: its feed is connected and
        has delivered since it (re)connected."""
        return self.market.usable.get(exchange, False)

    def _data_arrived(self, exchange: str) -> None:
        self._awaiting_data.discard(exchange)
        self.market.usable[exchange] = True
        log.info("%s: market data usable", exchange)
        self._publish_feed_state(exchange, True, "")

    def _publish_feed_state(self, exchange: str, usable: bool, reason: str) -> None:
        self.bus.publish(
            "status",
            {"event": "feed", "exchange": exchange, "usable": usable, "reason": reason},
        )

    def _forget(self, exchange: str) -> None:
        """Drop every quote of ``exchange`` from the book, and its rate."""
        self.rates.pop(exchange, None)
        forgot = False
        for quotes in self.book.values():
            if quotes.pop(exchange, None) is not None:
                forgot = True
        if forgot:
            self.book_revision += 1

    # --- signals -------------------------------------------------------------------------

    def _emit(self, signal: Signal) -> None:
        signal = attrs.evolve(signal, id=self.next_signal_id)
        self.next_signal_id += 1
        self.signals_detected += 1
        self._signal_times.append(signal.timestamp)
        if self.on_signal is not None:
            signal = self.on_signal(signal)
        self.last_signals.append(signal)
        log.info(
            "signal %d %s buy %s @ %s sell %s @ %s qty %.6g: %+.4f (%.3f %%)%s",
            signal.id,
            signal.symbol,
            signal.buy_exchange,
            f"{signal.buy_price:.8g}",
            signal.sell_exchange,
            f"{signal.sell_price:.8g}",
            signal.quantity,
            signal.profit,
            signal.profit_percent,
            " executing" if signal.executed else (
                f" not executed: {signal.reject_reason}" if signal.reject_reason else ""
            ),
        )
        self.bus.publish("signal", signal)
        if self.on_signal_recorded is not None:
            self.on_signal_recorded(signal)

    def restore_signals(self, signals: Sequence[Signal]) -> None:
        """Count the signals of a previous run (oldest first) in the last hour's figure."""
        self._signal_times.extend(signal.timestamp for signal in signals)

    def signals_last_hour(self) -> int:
        cutoff = self.clock() - _HOUR
        times = self._signal_times
        while times and times[0] < cutoff:
            times.popleft()
        return len(times)

    # --- setup and reload ---------------------------------------------------------------

    def set_venues(
        self,
        fees: Mapping[str, float],
        premium: Mapping[str, float],
        conversions: Mapping[str, Conversion] | None = None,
        rolling: Mapping[str, float] | None = None,
    ) -> None:
        """Install the taker fees and premium baselines of the enabled venues, the
        currency conversions of those quoted in another currency and the windows
        (seconds) of those whose premium baseline is rolling, and forget the quotes of
        venues no longer enabled. A rolling venue starts from its current median (kept
        across reloads and restored at start), else from ``premium``."""
        self.book_revision += 1
        self.market.fees = dict(fees)
        self._rolling = dict(rolling or {})
        self.rolling_premium.configure(self._rolling)
        premium = dict(premium)
        for venue in self._rolling:
            baseline = self.rolling_premium.baseline(venue)
            if baseline is not None:
                premium[venue] = baseline
        self.market.premium = premium
        conversions = dict(conversions or {})
        for venue in list(self.rates):
            if conversions.get(venue) != self._conversions.get(venue):
                del self.rates[venue]
        self._conversions = self.market.conversions = conversions
        self.inventory.conversions = conversions
        for exchange in list(self.market.usable):
            if exchange not in fees:
                del self.market.usable[exchange]
        self._awaiting_data.intersection_update(fees)
        for quotes in self.book.values():
            for exchange in [e for e in quotes if e not in fees]:
                del quotes[exchange]

    def set_symbols(self, symbols: Sequence[str]) -> None:
        """Forget the quotes of symbols no longer watched."""
        self.book_revision += 1
        for symbol in [s for s in self.book if s not in symbols]:
            del self.book[symbol]

    def fresh_quote(self, exchange: str, symbol: str, max_age: float) -> Quote | None:
        """The latest quote of ``symbol`` on ``exchange`` if its feed is usable and it is
        at most ``max_age`` seconds old (what an executor may price an order at), else
        ``None``."""
        quote = self.book.get(symbol, {}).get(exchange)
        if quote is None or not self.market.usable.get(exchange, False):
            return None
        if self.clock() - quote.received_ts > max_age:
            return None
        return quote

    def conversion(self, exchange: str) -> Conversion | None:
        """How ``exchange``'s prices are converted, ``None`` when they are not."""
        return self._conversions.get(exchange)

    def order_rate(self, exchange: str, side: str) -> Decimal | None:
        """The live rate an order of ``side`` on ``exchange`` is priced at when the venue
        is quoted in another currency (its latest rate quote's bid for a buy, ask for a
        sell: :func:`arbotd.fx.order_rate`); ``None`` for other venues, or before a rate
        arrived (and after its feed went down)."""
        if exchange not in self._conversions:
            return None
        rate = self.rates.get(exchange)
        return None if rate is None else order_rate(rate, side)

    def price_usd(self, asset: str) -> float | None:
        """A mid price of ``asset`` in a USD stablecoin, averaged over the venues whose
        market data is usable, for valuing balances; ``None`` when none of them quotes it
        (then a valuation is incomplete, see :meth:`arbotd.Ledger.full_value_usd`)."""
        usable = self.market.usable
        for venue, conversion in self._conversions.items():
            # A venue's own currency (KRW), at its rate market (USDTKRW).
            rate = self.rates.get(venue)
            if conversion.currency == asset and rate is not None and usable.get(venue):
                return 1 / rate.mid
        for quote_asset in ("USDT", "USDC", "USD", "FDUSD"):
            quotes = self.book.get(asset + quote_asset)
            if quotes:
                mids = [q.mid for venue, q in quotes.items() if usable.get(venue)]
                if mids:
                    return sum(mids) / len(mids)
        return None

    def rejection_counts(self) -> dict[str, int]:
        return dict(self.market.rejections)

    def snapshot(self) -> dict[str, Any]:
        return {
            "quotes_processed": self.quotes_processed,
            "signals_detected": self.signals_detected,
            "rejections": self.rejection_counts(),
        }

    def restore_premium(self, saved: Any) -> None:
        """Take back the rolling premium samples of a previous run (storage's saved
        state) and start the rolling venues from their medians."""
        self.rolling_premium.load(saved)
        premium = dict(self.market.premium)
        for venue in self._rolling:
            baseline = self.rolling_premium.baseline(venue)
            if baseline is not None:
                premium[venue] = baseline
        self.market.premium = premium

    def premium_baselines(self) -> dict[str, dict[str, Any]]:
        """Per venue with a premium baseline (fixed and not 0, or rolling): ``percent``
        (what opportunities are measured against now), ``mode`` (``fixed`` or
        ``rolling``), and for a rolling one ``samples`` and ``window_seconds``."""
        rolling = self.rolling_premium.status()
        out: dict[str, dict[str, Any]] = {}
        for venue in sorted(set(self.market.fees) | set(self._rolling)):
            percent = self.market.premium.get(venue, 0.0)
            if venue in rolling:
                out[venue] = {"percent": percent, "mode": "rolling",
                              "samples": rolling[venue]["samples"],
                              "window_seconds": rolling[venue]["window_seconds"]}
            elif percent:
                out[venue] = {"percent": percent, "mode": "fixed", "samples": None,
                              "window_seconds": None}
        return out

    def currencies(self) -> dict[str, dict[str, Any]]:
        """Per venue quoted in another currency: its currency, rate market, latest rate
        (bid, ask, receive time; ``None`` before the first) and quotes dropped for want
        of a usable rate."""
        out = {}
        for venue, conversion in self._conversions.items():
            rate = self.rates.get(venue)
            out[venue] = {
                "currency": conversion.currency,
                "rate_symbol": conversion.rate_symbol,
                "rate_max_age_seconds": conversion.max_age,
                "rate": None if rate is None else {
                    "bid": rate.bid, "ask": rate.ask, "timestamp": rate.received_ts},
                "quotes_without_rate": {
                    reason: self.unconverted[venue, reason]
                    for reason in ("rate_missing", "rate_stale")},
            }
        return out
