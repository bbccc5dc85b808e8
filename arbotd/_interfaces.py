"""The shapes of the objects plugins contribute through the hooks.

These are structural protocols: a plugin's class needs the attributes and methods, not a
base class. Methods marked *hot path* run once per quote and must be synchronous and
cheap: no I/O, no awaiting, no logging per call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

from arbotd._model import Signal, Trade

if TYPE_CHECKING:
    from arbotd._model import Balance, Fill, Order, Quote
    from arbotd.exchange.rules import SymbolRules
    from arbotd.inventory import Inventory

__all__ = [
    "AuditStore",
    "DurableStorage",
    "ExchangeAccount",
    "ExchangeAdapter",
    "Executor",
    "FeedStatus",
    "HistoryStore",
    "LimitUse",
    "MarketView",
    "QuoteSink",
    "RiskCheck",
    "Service",
    "Storage",
    "StoredState",
    "Strategy",
    "UserStore",
]


@runtime_checkable
class Service(Protocol):
    """A long-running task of a plugin (an API server, a storage writer, a recorder).

    ``run`` is started with ``await nursery.start(service.run)``: it calls
    ``task_status.started()`` once it is ready to be used, then runs until
    ``runtime.shutdown_requested`` is set (it should then return promptly) or it is
    cancelled.
    """

    name: str

    async def run(self, *, task_status: Any) -> None: ...


class QuoteSink(Protocol):
    """Where a feed delivers quotes: the engine. Every method is synchronous."""

    def on_quote(self, quote: Quote) -> None:
        """Hot path: one new best bid/ask."""

    def on_feed_state(self, exchange: str, usable: bool, reason: str = "") -> None:
        """The feed of ``exchange`` is connected (``True``: subscribed, book in sync) or
        down (``False``: disconnected, stale, sequence gap). Down forgets every quote the
        feed gave; connected makes the venue usable with its next quote, so quotes
        delivered after ``True`` must be fresh. Quotes of an unusable feed are never traded
        on."""

    def forget_symbol(self, exchange: str, symbol: str) -> None:
        """The order book of ``symbol`` on ``exchange`` is out of sync (a sequence gap, a
        failed checksum, a crossed book): forget its last quote. The feed delivers none
        for the symbol until its book is in sync again; the venue's other symbols stay
        usable."""


@attrs.frozen
class FeedStatus:
    """For ``/api/v1/status``: whether the feed is connected (a feed should say so only
    once data has arrived since it last connected; ``/status`` also requires the engine
    to hold its data usable), the local time of its last quote, and the latency from
    exchange event time to local receive time."""

    connected: bool
    last_update: float | None = None
    latency_ms: float | None = None


@runtime_checkable
class ExchangeAdapter(Protocol):
    """One venue's market data (and, for real exchanges, its account).

    ``name`` is the venue's name in the configuration and the API (``binance``);
    ``taker_fee`` is a fraction (0.001 = 0.1 %); ``premium_baseline`` a percent by which
    this venue usually trades above the others (0 for most).

    A venue quoted in another currency than its symbols' (:mod:`arbotd.fx`) also has
    ``quote_currency`` (``"KRW"``), ``rate_symbol`` (the market its feed also delivers
    that prices the symbols' quote currency in it: ``"USDTKRW"``) and may have
    ``rate_max_age_seconds``; its feed delivers its prices as the venue quotes them. A
    venue whose premium baseline is followed has ``premium_mode = "rolling"`` and
    ``premium_window_seconds`` (``premium_baseline`` is then where it starts).

    Two adapters built from the same settings should compare equal: on reload, a feed
    keeps running (as the running object; the new one is dropped) when its new adapter
    equals the old one and the symbols are unchanged. Otherwise the old feed is stopped
    and the new adapter started once the old one's ``stream_quotes`` has ended.
    """

    name: str
    taker_fee: float
    premium_baseline: float

    async def stream_quotes(
        self, symbols: Sequence[str], sink: QuoteSink, *, task_status: Any
    ) -> None:
        """Deliver quotes for ``symbols`` to ``sink`` until cancelled, reconnecting as
        needed; call ``task_status.started()`` once subscribed."""

    def feed_status(self) -> FeedStatus: ...


class MarketView(Protocol):
    """What a strategy may know besides the quotes: the engine fills it in."""

    now: float
    trading: bool
    fees: Mapping[str, float]
    premium: Mapping[str, float]
    usable: Mapping[str, bool]
    #: How the traded assets are spread over the venues against their targets
    #: (:class:`arbotd.inventory.Inventory`): for thresholds skewed by inventory.
    inventory: Inventory

    def available(self, exchange: str, asset: str) -> float:
        """Free balance of ``asset`` on ``exchange`` (0 when unknown)."""

    def reject(self, reason: str) -> None:
        """Count an opportunity turned down, by reason (``stale``, ``below_threshold``,
        ``anomaly``, ``cooldown``, ``trend``, ``balance``, ``depth`` ...)."""


@runtime_checkable
class Strategy(Protocol):
    """Turns quotes into signals. ``evaluate`` is the hot path. ``symbols`` are the
    symbols it trades: the feeds subscribe to the union of every strategy's symbols."""

    name: str
    symbols: Sequence[str]

    def evaluate(
        self, quote: Quote, quotes: Mapping[str, Quote], market: MarketView
    ) -> list[Signal]:
        """Called for every quote with the latest quote of the same symbol on every
        exchange (``quotes`` maps exchange name to quote, ``quote`` included). Return the
        signals this quote opens (``id`` 0: the engine numbers them), and count every
        opportunity turned down with ``market.reject``.

        A strategy may also have ``quiet(view, market)``, which answers for a replayed
        batch of quotes at once which ones ``evaluate`` would turn down whatever happens
        in between (:class:`arbotd.batch.BatchStrategy`); backtests then skip them."""


@attrs.frozen
class LimitUse:
    """One risk limit and how much of it is used, for ``/api/v1/risk/limits``."""

    name: str
    limit: float
    current: float

    @property
    def ratio(self) -> float:
        return self.current / self.limit if self.limit > 0 else 0.0

    @property
    def status(self) -> Literal["normal", "warning", "critical"]:
        if self.limit > 0 and self.current >= self.limit:
            return "critical"
        if self.ratio >= 0.8:
            return "warning"
        return "normal"


@runtime_checkable
class RiskCheck(Protocol):
    """Decides whether a signal may be executed. Called once per signal (not per quote)
    while trading.

    A check may also have a ``stop_loss_fraction`` attribute (0.02 = 2 %): when one leg of
    a trade fills and the other does not, the missing leg is completed at market only
    while its price has moved less than this against the plan (the smallest value of all
    checks applies); without any, the filled leg is always unwound.
    """

    name: str

    def check(self, signal: Signal) -> str | None:
        """``None`` to accept, or the reason for rejecting (``"max_concurrent_trades"``)."""

    def limits(self) -> list[LimitUse]: ...


@runtime_checkable
class Executor(Protocol):
    """Places orders in one trading mode. The core's trade runner drives both legs, the
    partial-fill reconciliation and the unwind; an executor only knows how to execute one
    order where it trades (on paper against the book, or on a real exchange).

    An executor may also have

    * a ``start(venues)`` method, called each time trading starts in its mode with the
      exchanges it will trade on (the paper executor funds its accounts there; the live
      one refuses to start without keys, raising :class:`arbotd.TradingError`);
    * an ``admit(signal)`` method, called for every signal before the risk checks while
      trading: it returns the signal (resized, e.g. to the exchanges' lot sizes) or a
      reason to reject it (``"filters"``);
    * an ``account_status()`` method, for ``/health``: for each exchange account it
      trades through, ``{"credentials": bool, "ready": bool, "last_error": str | None}``.
    """

    mode: str

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        """Execute ``order`` immediate-or-cancel (``purpose == "unwind"``: at market) and
        return it with its final status and its fills. Raise
        :class:`arbotd.TemporaryExchangeError` when the outcome is unknown (timeout): the
        runner then asks :meth:`query_order`."""

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        """The final state of an order placed earlier, by its client order id."""

    def reference_price(self, exchange: str, symbol: str, side: str) -> float | None:
        """The price an order on ``side`` would get now (best ask to buy, best bid to
        sell), or ``None`` when unknown."""


@runtime_checkable
class ExchangeAccount(Protocol):
    """A trading account on a real exchange, for ``live`` mode.

    ``name`` is the venue's name, the same as its :class:`ExchangeAdapter`'s. An account
    is created whether or not its keys are set (``missing_credentials`` says which are
    not); the live executor opens it only when live trading is wanted. Every method that
    talks to the exchange raises :class:`arbotd.TemporaryExchangeError` (worth retrying:
    timeouts, 5xx, 429/418 with ``retry_after``) or :class:`arbotd.PermanentExchangeError`
    (a rejected order, a bad key), never a bare library exception, and never puts a secret
    in a message.

    An account may also have an ``order_stream`` attribute: an
    :class:`arbotd.exchange.OrderStream` (or ``None``), the exchange's private stream of
    the account's orders, which the live executor runs once the account is open and from
    which the account learns of its orders' fills faster than by asking.
    """

    name: str

    def missing_credentials(self) -> list[str]:
        """The names of the environment variables that must be set to trade here and are
        not (empty when the account can trade)."""

    async def open(self) -> None:
        """Get ready to trade: measure the clock offset, load every symbol's trading rules
        (:meth:`rules`). Called at the start of live trading and again once a day."""

    async def close(self) -> None:
        """Release connections."""

    def rules(self, symbol: str) -> SymbolRules | None:
        """The exchange's rules for ``symbol`` (exchange-neutral name), ``None`` when
        the symbol is not listed or the rules are not loaded yet."""

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Every asset held: asset -> (free, locked)."""

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        """Send ``order`` with its ``client_order_id``: an immediate-or-cancel limit order
        at ``order.price``, or a market order when the price is 0 (hedges and unwinds).
        Price and quantity are already rounded to the rules. Return the order with its
        final status, filled quantity and exchange order id, and its fills (fees as the
        exchange charged them).

        On a venue quoted in another currency (:mod:`arbotd.fx`) the price is in that
        currency (KRW), on the tick of the rules, which are the venue's own (in KRW);
        its fills are reported as the venue states them, priced and charged in KRW: the
        live executor converts them (``native_price``) at the order's ``rate``.

        Raise :class:`arbotd.TemporaryExchangeError` when the outcome is unknown (a
        timeout): the caller then asks :meth:`query_order`."""

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        """The state and fills of an order sent earlier, by its client order id. Raise
        :class:`arbotd.PermanentExchangeError` when the exchange does not know it (it
        was never placed): only once a placement this account sent without an answer
        can no longer be accepted (its receive window or expiry has passed), since until
        then the order may still arrive and fill."""

    async def cancel_order(self, order: Order) -> None:
        """Cancel an order still open, by its client order id (nothing when it is
        already final)."""


@attrs.frozen
class StoredState:
    """What a storage backend hands the daemon when it opens: where numbering resumes,
    the trades a crash left unfinished (with their orders and fills), and the paper
    accounts (``starting``: what each asset was funded with; ``balances``: funding plus
    every stored fill), so that simulation resumes where it stopped.

    The risk state comes back too: the trades closed on the UTC day ``day`` (the day
    the storage opened) and their realised profit, the signals of the last hour
    (oldest first; for hourly caps and cool-downs), and ``saved``, what was stored with
    ``save_state`` (the emergency stop, the equity peak).
    """

    next_signal_id: int = 1
    next_trade_id: int = 1
    unfinished_trades: tuple[Trade, ...] = ()
    starting: Mapping[tuple[str, str], Decimal] = attrs.field(factory=dict)
    balances: Mapping[tuple[str, str], Decimal] = attrs.field(factory=dict)
    day: dt.date | None = None
    trades_today: int = 0
    realized_today: Decimal = Decimal(0)
    recent_signals: tuple[Signal, ...] = ()
    saved: Mapping[str, Any] = attrs.field(factory=dict)


@runtime_checkable
class Storage(Protocol):
    """Persistence of signals, trades, market history and API users.

    The ``record_*`` methods and ``observe_quote`` are called from the event loop and must
    return at once: they only queue work for the backend's writer. ``observe_quote`` is on
    the hot path (every quote). Everything that touches the database runs in other
    threads, and the ``async`` methods never block the event loop while they wait.

    For ``/health``, a storage may also have

    * an ``async ping()`` method: a cheap read, raising an exception whose message says
      why when the database cannot answer (without it, the check looks at ``backlog()``);
    * a ``status()`` method: ``{"healthy": bool, "last_error": str | None, "backlog":
      int}``, ``healthy`` false from the first failed write until one succeeds again,
      ``last_error`` the cause in the database's words; and, for ``/metrics``, counts
      since the start where it keeps them: ``write_errors`` (failed writes),
      ``dropped_bars`` and ``dropped_quotes`` (shed by a full backlog);
    * a ``data_directories()`` method: the directories of this machine its files are in
      (none for a database server), whose free space the disk check watches.
    """

    async def open(self) -> StoredState:
        """Connect, create or migrate the schema, start the writer, and return the saved
        state. Raises :class:`arbotd.ArbotError` with a clear message when the database
        cannot be reached."""

    async def close(self) -> None:
        """Write everything still queued, then stop the writer."""

    async def flush(self) -> None:
        """Return once everything recorded so far is written."""

    def observe_quote(self, quote: Quote) -> None:
        """Hot path: fold a quote into its 1-minute bar (and record it, when raw quote
        recording is on)."""

    def record_signal(self, signal: Signal) -> None: ...

    def record_trade(self, trade: Trade) -> None:
        """Called at every state change of a trade; the latest call wins."""

    def record_funding(self, exchange: str, asset: str, amount: Decimal, timestamp: float
                       ) -> None:
        """A paper account was given ``amount`` of ``asset`` (its starting balance)."""

    def record_equity(self, timestamp: float, equity_usd: float, balances: Sequence[Balance]
                      ) -> None:
        """A snapshot of equity and balances (once a minute)."""

    def backlog(self) -> int:
        """Records queued and not yet written."""


@runtime_checkable
class DurableStorage(Protocol):
    """What a storage backend offers for money safety, beyond :class:`Storage`: writes
    that are on disk when they return (a synchronous, fsync'd transaction, not the
    batched writer). The daemon uses them when the backend has them:

    * a trade and the client order ids of its orders are committed with
      :meth:`commit_trade` before any of those orders is sent;
    * trade ids come from blocks reserved with :meth:`reserve_ids`, so no id (and no
      client order id derived from it) is ever given out twice, even by a daemon that was
      killed before it recorded what it used;
    * state that must survive a restart (an emergency stop, the equity peak) is kept
      with :meth:`save_state` or :meth:`record_state` and comes back in
      :attr:`StoredState.saved`.

    Each raises :class:`arbotd.ArbotError` naming the cause when the write fails.
    """

    async def commit_trade(self, trade: Trade, signal: Signal | None = None) -> None:
        """Write ``trade`` with its orders and fills (and ``signal``, the one it came
        from, when given) durably before returning."""

    async def reserve_ids(self, name: str, count: int) -> int:
        """Reserve ``count`` consecutive ids of the kind ``name`` (``"trade"``) durably
        and return the first. Reserved ids are never handed out again; the first block
        of a kind starts after any id of that kind already stored."""

    async def save_state(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON-ready; ``None`` removes the key) under ``key`` across
        restarts, on disk when this returns."""

    def record_state(self, key: str, value: Any) -> None:
        """Like :meth:`save_state`, through the batched writer: returns at once, for
        state that changes often (an equity peak)."""


@runtime_checkable
class UserStore(Protocol):
    """The API's users, kept by storage backends that support them (``arbotd user``).

    Every token the API issues carries its user's ``token_generation``; the API honours a
    token only while its user exists with that generation (and a scope at least the
    token's), so raising the generation (a new password, a revocation) ends every token
    issued before. The methods that change a user raise :class:`arbotd.ArbotError` naming
    the user when there is no such user."""

    async def add_user(self, username: str, password_hash: str, scope: str) -> None:
        """Add a user; raises :class:`arbotd.ArbotError` when the name is taken."""

    async def list_users(self) -> list[dict[str, Any]]:
        """Every user: ``username``, ``scope``, ``created_at``, ``token_generation``."""

    async def get_user(self, username: str) -> dict[str, Any] | None:
        """``username``, ``password_hash``, ``scope``, ``created_at``,
        ``token_generation``; ``None`` when unknown."""

    async def remove_user(self, username: str) -> None:
        """Delete a user (its tokens stop working)."""

    async def set_password(self, username: str, password_hash: str) -> int:
        """Replace a user's password hash and raise its token generation, in one
        transaction; return the new generation."""

    async def revoke_tokens(self, username: str) -> int:
        """Raise a user's token generation (every token issued so far stops working);
        return the new generation."""

    async def set_scope(self, username: str, scope: str) -> None:
        """Change a user's scope (``read`` or ``trading``); tokens issued with a scope
        above the new one stop working."""


@runtime_checkable
class AuditStore(Protocol):
    """The audit trail of state-changing calls (API writes and logins, ``arbotd user``
    commands, reloads by signal), kept by storage backends that support it.

    :meth:`record_audit` is called from the event loop or a command and must return at
    once: it queues the entry for the backend's writer, which never drops it (entries
    that cannot be written before a shutdown gives up are counted in the log). It never
    raises: an entry is evidence, and recording it must not break the call it describes.
    """

    def record_audit(
        self,
        *,
        actor: str,
        method: str,
        action: str,
        outcome: str,
        source: str | None = None,
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Keep one entry: ``actor`` who (a user name, an API key's ``key:<fingerprint>``,
        ``anonymous``, ``signal``, the local account of a command; never a secret),
        ``method`` by which means (``jwt``, ``api_key``, ``anonymous``, ``password`` for
        a login, ``cli``, ``signal``), ``source`` from where (an IP address, ``local``),
        ``action`` what (``POST /api/v1/trading/start``, ``user add``, ``SIGHUP
        reload``), ``outcome`` (``success``, an API error code, ``applied``/``refused``
        ...), ``status`` the HTTP status, ``details`` JSON-ready, ``timestamp`` epoch
        seconds (default: now). Text longer than the store keeps is cut."""

    async def audit_entries(
        self,
        *,
        start_time: float | None = None,
        end_time: float | None = None,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """``GET /audit``: ``{"entries", "total_count", "pagination"}``, newest first,
        ``start_time <= timestamp <= end_time``; ``actor``, ``action`` and ``outcome``
        match exactly."""


@runtime_checkable
class HistoryStore(Protocol):
    """The history the API serves, kept by storage backends that support it.

    Every method answers a JSON-ready dict in the shape of the API reference's response
    for its endpoint (named below), and raises ``ValueError`` with a message for the
    caller when an argument is invalid (an unknown interval, period or metric, a start
    after the end). Dates are UTC days, times epoch seconds. ``mode`` (``simulation``,
    ``live``, ``backtest``) keeps one trading mode's results apart from the others';
    ``None`` counts every mode.
    """

    async def trades(
        self,
        *,
        start_date: dt.date | None = None,
        end_date: dt.date | None = None,
        symbol: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """``GET /trades``: ``{"trades", "total_count", "pagination"}``, newest first;
        the dates select trades by the UTC day they started, both included."""

    async def trade(self, trade_id: int) -> dict[str, Any] | None:
        """``GET /trades/{trade_id}``: one trade in detail, ``None`` when unknown."""

    async def signals(
        self,
        *,
        start_time: float | None = None,
        end_time: float | None = None,
        symbol: str | None = None,
        executed: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """``GET /signals``: ``{"signals", "total_count"}``, newest first."""

    async def price_history(
        self,
        *,
        symbol: str,
        exchange: str | None = None,
        start_time: float,
        end_time: float,
        interval: str = "1m",
    ) -> dict[str, Any]:
        """``GET /prices/history``: ``{"symbol", "exchange", "interval", "data"}``, OHLC
        candles (``1m``, ``5m``, ``1h``, ``1d``) oldest first."""

    async def performance(
        self,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        period: str | None = None,
        mode: str | None = None,
    ) -> dict[str, Any]:
        """``GET /performance``: ``{"period", "start_date", "end_date", "metrics",
        "daily_breakdown"}`` over ``start``..``end`` (custom) or the last ``period``
        (``day``, ``week``, ``month``, ``year``)."""

    async def symbol_performance(
        self,
        *,
        symbols: Sequence[str] | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        metrics: Sequence[str] | None = None,
        mode: str | None = None,
    ) -> dict[str, Any]:
        """The ``results`` of ``POST /analytics/query`` with ``"query_type":
        "symbol_performance"``: ``{symbol: {metric: float}}`` (``profit``, ``win_rate``,
        ``volume``; ``None`` is all three)."""
