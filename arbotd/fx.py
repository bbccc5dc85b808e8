"""Venues quoted in another currency, and the premium a venue usually trades at
(``spec/behaviour.md``, "Venues quoted in another currency").

A venue may quote a symbol in another currency than the symbol's own (Upbit quotes
BTCUSDT as KRW-BTC). Its adapter says so with two attributes:

* ``quote_currency``: the currency its prices are in (``"KRW"``);
* ``rate_symbol``: the market its feed also delivers that prices the symbols' quote
  currency in that currency (``"USDTKRW"``: KRW per USDT);

and may set ``rate_max_age_seconds`` (default :data:`DEFAULT_RATE_MAX_AGE`). The engine
keeps the latest rate quote of each such venue and converts every other quote of it
before the book sees it, on the conservative side each way: the daemon buys a coin with
KRW it got by selling USDT at the rate market's bid, and turns the KRW it gets for a coin
back into USDT at the rate market's ask, so

    ask (USDT) = ask (KRW) / rate bid        bid (USDT) = bid (KRW) / rate ask

and the same for every book level. The converted quote keeps its native best prices and
both rates. A quote with no rate yet, or whose rate is older than the venue's
``rate_max_age_seconds`` (measured between the two quotes' receive times, so a backtest's
virtual time works alike), is not usable: the venue's quote of that symbol is dropped.

The premium baseline (:class:`RollingPremium`) is a venue's usual premium over the
others, in percent: fixed (``premium_baseline``), or with ``premium_mode = "rolling"`` the
median of its observed premium over ``premium_window_seconds``.
"""

from __future__ import annotations

import bisect
import collections
import decimal
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from arbotd._model import Fill, Quote, Side, split_symbol, to_decimal

__all__ = [
    "DEFAULT_RATE_MAX_AGE",
    "Conversion",
    "RollingPremium",
    "conversion_of",
    "convert_quote",
    "converted",
    "converted_fill",
    "native_limit",
    "order_rate",
    "rolling_premium_windows",
    "venue_conversions",
]

DEFAULT_RATE_MAX_AGE = 5.0
"""Seconds a rate quote stays usable when the adapter does not say."""


@attrs.frozen(slots=True)
class Conversion:
    """How one venue's prices are converted: its ``currency``, the ``rate_symbol`` whose
    quotes give the rate, and how old (seconds) a rate may be."""

    currency: str
    rate_symbol: str
    max_age: float = DEFAULT_RATE_MAX_AGE

    @property
    def priced(self) -> str:
        """The currency the rate market prices (``USDT`` of ``USDTKRW``): the symbols'
        quote currency."""
        return split_symbol(self.rate_symbol)[0]


def conversion_of(adapter: Any) -> Conversion | None:
    """The :class:`Conversion` an exchange adapter declares, ``None`` for a venue that
    quotes in the symbols' own currency."""
    currency = getattr(adapter, "quote_currency", None)
    if not currency:
        return None
    rate_symbol = getattr(adapter, "rate_symbol", None)
    if not rate_symbol:
        raise ValueError(
            f"exchange {adapter.name!r} quotes in {currency} but names no rate_symbol "
            "(the market that prices its currency)")
    max_age = float(getattr(adapter, "rate_max_age_seconds", DEFAULT_RATE_MAX_AGE))
    conversion = Conversion(str(currency), str(rate_symbol), max_age)
    try:
        quoted = split_symbol(conversion.rate_symbol)[1]
    except ValueError:
        quoted = ""
    if quoted != conversion.currency:
        raise ValueError(
            f"exchange {adapter.name!r}: rate_symbol {rate_symbol!r} must price the "
            f"symbols' quote currency in {currency} (such as USDT{currency})")
    return conversion


def venue_conversions(adapters: Iterable[Any]) -> dict[str, Conversion]:
    """The conversions of the adapters that quote in another currency, by venue."""
    found = {}
    for adapter in adapters:
        conversion = conversion_of(adapter)
        if conversion is not None:
            found[adapter.name] = conversion
    return found


def rolling_premium_windows(adapters: Iterable[Any]) -> dict[str, float]:
    """The window (seconds) of each adapter whose ``premium_mode`` is ``"rolling"``."""
    return {
        adapter.name: float(getattr(adapter, "premium_window_seconds", 3600.0))
        for adapter in adapters
        if getattr(adapter, "premium_mode", "fixed") == "rolling"
    }


def convert_quote(quote: Quote, rate: Quote) -> Quote:
    """``quote`` (native prices) in the symbol's quote currency at ``rate`` (a quote of
    the rate market: native units per unit of the symbol's quote currency): asks divided
    by the rate's bid, bids by its ask."""
    rate_bid, rate_ask = rate.bid, rate.ask
    bids, asks = quote.bids, quote.asks
    return Quote(
        quote.exchange, quote.symbol, quote.bid / rate_ask, quote.ask / rate_bid,
        quote.bid_size, quote.ask_size, quote.exchange_ts, quote.received_ts,
        None if bids is None else tuple((p / rate_ask, s) for p, s in bids),
        None if asks is None else tuple((p / rate_bid, s) for p, s in asks),
        native_bid=quote.bid, native_ask=quote.ask, rate_bid=rate_bid, rate_ask=rate_ask,
    )


def order_rate(rate: Quote, side: Side | str) -> Decimal:
    """The rate an order of ``side`` is priced and converted at, from a quote of the rate
    market: its bid for a buy (the venue's currency spent is what selling the quote
    currency there yields), its ask for a sell."""
    return to_decimal(rate.bid if side == Side.BUY else rate.ask)


def native_limit(price: Decimal, rate: Decimal) -> Decimal:
    """A limit ``price`` in the quote currency, in the venue's currency at ``rate`` (before
    the venue's tick: round a buy down and a sell up, as
    :meth:`arbotd.exchange.SymbolRules.round_price` does, to stay within it)."""
    return price * rate


# Converted prices keep this many significant digits: far beyond any tick, without the
# 28 digits of a division.
_CONVERTED = decimal.Context(prec=18)


def converted(native: Decimal, rate: Decimal) -> Decimal:
    """``native`` (the venue's currency) in the quote currency at ``rate``."""
    return _CONVERTED.divide(native, rate)


def converted_fill(fill: Fill, currency: str, rate: Decimal) -> Fill:
    """A fill a venue quoted in ``currency`` reported in that currency (its ``price``, and
    its fee when charged in it), as the ledger and the figures take it: ``native_price``
    and ``native_asset`` what the venue charged (what the balances move by), ``price``
    converted at ``rate`` (the order's), and a fee in ``currency`` valued
    (``fee_value``) at the same rate. A fill already converted is returned as it is."""
    if fill.native_price is not None:
        return fill
    fee_value = fill.fee_value
    if fill.fee_asset == currency and fee_value is None:
        fee_value = converted(fill.fee, rate)
    return attrs.evolve(fill, price=converted(fill.price, rate), native_price=fill.price,
                        native_asset=currency, fee_value=fee_value)


class RollingPremium:
    """The rolling premium baseline of the venues with ``premium_mode = "rolling"``.

    Every ``sample_seconds`` (per venue and symbol) the venue's observed premium is taken:
    its mid over the mean mid of the other usable venues, minus 1, in percent. A venue's
    baseline is the median of its samples (over all its symbols) of the last
    ``window_seconds``. Samples are few (one a second a symbol: 3,600 an hour), so each
    venue keeps them in time order plus a sorted copy for the median.
    """

    def __init__(self, sample_seconds: float = 1.0) -> None:
        self.sample_seconds = sample_seconds
        self.windows: dict[str, float] = {}
        self._samples: dict[str, collections.deque[tuple[float, float]]] = {}
        self._sorted: dict[str, list[float]] = {}
        self._last: dict[tuple[str, str], float] = {}

    def configure(self, windows: Mapping[str, float]) -> None:
        """The venues followed and their windows (seconds); others are dropped."""
        self.windows = dict(windows)
        for venue in [v for v in self._samples if v not in windows]:
            del self._samples[venue]
            del self._sorted[venue]

    def observe(self, quote: Quote, quotes: Mapping[str, Quote],
                usable: Mapping[str, bool]) -> float | None:
        """Take a sample from ``quote`` (a followed venue's, converted) against the other
        venues in ``quotes`` when one is due; return the venue's new baseline then, else
        ``None``."""
        venue = quote.exchange
        key = (venue, quote.symbol)
        now = quote.received_ts
        if now - self._last.get(key, -math.inf) < self.sample_seconds:
            return None
        mids = [q.mid for name, q in quotes.items() if name != venue and usable.get(name)]
        if not mids:
            return None
        reference = sum(mids) / len(mids)
        if reference <= 0:
            return None
        self._last[key] = now
        self.add(venue, now, (quote.mid / reference - 1) * 100)
        return self.baseline(venue)

    def add(self, venue: str, timestamp: float, premium: float) -> None:
        samples = self._samples.setdefault(venue, collections.deque())
        ordered = self._sorted.setdefault(venue, [])
        samples.append((timestamp, premium))
        bisect.insort(ordered, premium)
        cutoff = timestamp - self.windows.get(venue, math.inf)
        while samples and samples[0][0] < cutoff:
            _, old = samples.popleft()
            del ordered[bisect.bisect_left(ordered, old)]

    def baseline(self, venue: str) -> float | None:
        """The median premium (percent) of ``venue``'s window, ``None`` without samples."""
        ordered = self._sorted.get(venue)
        if not ordered:
            return None
        n = len(ordered)
        middle = n // 2
        return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def status(self) -> dict[str, dict[str, Any]]:
        """Per followed venue: ``baseline_percent``, ``samples``, ``window_seconds``."""
        return {
            venue: {"baseline_percent": self.baseline(venue),
                    "samples": len(self._sorted.get(venue, ())),
                    "window_seconds": window}
            for venue, window in self.windows.items()
        }

    def dump(self) -> dict[str, list[list[float]]]:
        """The samples, JSON-ready, for storage (``save_state``/``record_state``)."""
        return {venue: [[t, p] for t, p in samples]
                for venue, samples in self._samples.items()}

    def load(self, saved: Any) -> None:
        """Take back what :meth:`dump` gave (of a previous run); samples older than the
        window by the latest one are dropped as they are added."""
        if not isinstance(saved, dict):
            return
        for venue, samples in saved.items():
            if venue not in self.windows or not isinstance(samples, list):
                continue
            for sample in sorted(samples):
                try:
                    timestamp, premium = float(sample[0]), float(sample[1])
                except (TypeError, ValueError, IndexError):
                    continue
                if math.isfinite(premium):
                    self.add(venue, timestamp, premium)
