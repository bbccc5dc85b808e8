"""An exchange's private order stream, shared by the exchange plugins: what it tells of the
account's orders, and the reconnecting connection that listens to it.

An exchange pushes every change of the account's orders on an authenticated WebSocket
(Binance's user data stream, Bybit's ``order`` and ``execution`` topics, OKX's ``orders``
channel) within milliseconds of the match, where REST only answers when asked. A trading
account uses it this way:

* an :class:`OrderStream` (subclassed per exchange: URL, login and subscription,
  heartbeat, message format) keeps one connection open, reconnecting with backoff, and
  records what it hears in an :class:`OrderTracker`;
* after placing an order, the account waits on the tracker (:meth:`OrderTracker.wait`) a
  short while for the order to be final with all its fills. When the stream is down, has
  reconnected since the order was sent (events may have been missed in between) or stays
  silent, the account asks REST as it always did;
* every fill carries the exchange's own fill id, so fills heard on the stream and read
  from REST are merged by it (:func:`merge_fills`) and each is counted once.

What the stream said stays true after a disconnect (unlike a quote, a fill does not go
stale), but an order counts as known only once it is final *and* the fills heard add up
to the quantity the exchange says it filled: a fill lost on the way is never guessed.
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import orjson
import trio

from arbotd._model import Fill, Order, OrderStatus
from arbotd.exchange.feed import Backoff, ProblemLog, Resync
from arbotd.exchange.wsclient import (
    ConnectionClosed,
    HandshakeFailed,
    WebSocketConnection,
    error_cause,
    open_connection,
)

__all__ = [
    "OrderReport",
    "OrderStream",
    "OrderTracker",
    "ReportedFill",
    "SignedOrderStream",
    "StreamRefused",
    "TrackedOrder",
    "merge_fills",
]

log = logging.getLogger(__name__)

# Orders remembered by a tracker; the oldest are forgotten first. A trade's orders are
# asked for within seconds of being sent, so this is ample.
_REMEMBERED_ORDERS = 10_000


@attrs.frozen(slots=True)
class ReportedFill:
    """One execution as the stream reported it. ``fee`` is what was charged (positive);
    ``fee_asset`` is ``""`` when the message does not name it."""

    fill_id: str
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str
    timestamp: float

    def to_fill(self, order: Order, exchange: str, fee_asset: str = "") -> Fill:
        """The fill of ``order``; ``fee_asset`` stands in when the message named none."""
        return Fill(
            order_id=order.client_order_id,
            trade_id=order.trade_id,
            exchange=exchange,
            symbol=order.symbol,
            side=order.side,
            price=self.price,
            quantity=self.quantity,
            fee=self.fee,
            fee_asset=self.fee_asset or fee_asset,
            timestamp=self.timestamp,
        )


@attrs.frozen(slots=True)
class OrderReport:
    """What one message said about one order, known by the client order id the exchange
    has (OKX's ``clOrdId`` may differ from arbotd's id). ``status`` is the final status
    (``None``: still open, or not said); ``filled`` the cumulative quantity, when said."""

    client_order_id: str
    exchange_order_id: str | None = None
    status: OrderStatus | None = None
    filled: Decimal | None = None
    fills: tuple[ReportedFill, ...] = ()
    reason: str | None = None


@attrs.define
class TrackedOrder:
    """Everything heard of one order so far."""

    client_order_id: str
    exchange_order_id: str | None = None
    status: OrderStatus | None = None
    filled: Decimal | None = None
    fills: dict[str, ReportedFill] = attrs.field(factory=dict)
    reason: str | None = None

    @property
    def complete(self) -> bool:
        """Final, and its fills heard add up to what the exchange says it filled."""
        if self.status is None or self.filled is None:
            return False
        return sum((f.quantity for f in self.fills.values()), Decimal(0)) == self.filled

    def fills_of(self, order: Order, exchange: str, fee_asset: str = "") -> dict[str, Fill]:
        """The fills heard, as fills of ``order``, by fill id."""
        return {fill_id: f.to_fill(order, exchange, fee_asset)
                for fill_id, f in self.fills.items()}


class OrderTracker:
    """What an account's order stream has heard, per order, and whether the stream is up.

    ``session`` counts the stream's successful subscriptions: an order sent during one
    session can be followed on the stream only while that session lasts, since a
    reconnect may have missed its events.
    """

    def __init__(self, capacity: int = _REMEMBERED_ORDERS) -> None:
        self.capacity = capacity
        self._orders: collections.OrderedDict[str, TrackedOrder] = collections.OrderedDict()
        self._up = False
        self._session = 0
        self._changed: trio.Event | None = None

    # --- the stream's state -----------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up

    def session_if_up(self) -> int | None:
        """The current session while the stream is up, else ``None``: read it before
        sending an order, and hand it to :meth:`wait`."""
        return self._session if self._up else None

    def stream_up(self) -> None:
        """The stream is subscribed: a new session begins."""
        self._session += 1
        self._up = True
        self._notify()

    def stream_down(self) -> None:
        self._up = False
        self._notify()

    # --- orders -----------------------------------------------------------------------------

    def record(self, report: OrderReport) -> None:
        """Add what one message said. Fills are kept by fill id (a repeated one counts
        once); a final status is never reopened by a later, older-looking message."""
        cid = report.client_order_id
        tracked = self._orders.get(cid)
        if tracked is None:
            tracked = self._orders[cid] = TrackedOrder(cid)
            while len(self._orders) > self.capacity:
                self._orders.popitem(last=False)
        else:
            self._orders.move_to_end(cid)
        if report.exchange_order_id:
            tracked.exchange_order_id = report.exchange_order_id
        if report.filled is not None and (tracked.filled is None
                                          or report.filled > tracked.filled):
            tracked.filled = report.filled
        if report.status is not None and tracked.status is None:
            tracked.status = report.status
            tracked.reason = report.reason
        for fill in report.fills:
            tracked.fills.setdefault(fill.fill_id, fill)
        self._notify()

    def get(self, client_order_id: str) -> TrackedOrder | None:
        return self._orders.get(client_order_id)

    def complete(self, client_order_id: str) -> TrackedOrder | None:
        """The order if the stream has told all of it (final, every fill heard)."""
        tracked = self._orders.get(client_order_id)
        return tracked if tracked is not None and tracked.complete else None

    async def wait(
        self, client_order_id: str, session: int | None, timeout: float
    ) -> TrackedOrder | None:
        """The order once the stream has told all of it, within ``timeout`` seconds;
        ``None`` as soon as that can no longer be expected: the stream is down or has
        reconnected since ``session`` (what :meth:`session_if_up` said before the order
        was sent), or the time ran out."""
        with trio.move_on_after(timeout):
            while True:
                tracked = self.complete(client_order_id)
                if tracked is not None:
                    return tracked
                if session is None or not self._up or self._session != session:
                    return None
                if self._changed is None:
                    self._changed = trio.Event()
                await self._changed.wait()
        return None

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


def merge_fills(*sources: Mapping[str, Fill]) -> list[Fill]:
    """The fills of several sources keyed by the exchange's fill id, each once (the
    first source's copy wins), oldest first."""
    merged: dict[str, Fill] = {}
    for source in sources:
        for fill_id, fill in source.items():
            merged.setdefault(fill_id, fill)
    return sorted(merged.values(), key=lambda f: f.timestamp)


class StreamRefused(Exception):
    """The exchange refused the stream's login or subscription (a wrong key, a key
    without the permission, a clock too far off); the message says what it answered."""


class OrderStream:
    """Base of an exchange's private order stream: subclasses set ``name`` and implement
    :meth:`login` (authenticate and subscribe, with :meth:`request`), :meth:`parse` and
    :meth:`heartbeat`; :meth:`run` does the rest the same way for every exchange.

    * The connection is reopened with jittered exponential backoff (``backoff``); after a
      refused login only at the backoff's maximum, so a wrong key is not hammered.
    * A heartbeat goes out every ``heartbeat_interval`` seconds, and a connection that
      brings no message (not even the heartbeat's answer) for ``stale_after`` seconds is
      closed and opened again: a silent private stream would only delay every order.
    * Messages that are not understood are skipped, counted and logged at most once a
      minute; :class:`arbotd.exchange.Resync` from :meth:`parse` reconnects.
    """

    name: str = ""
    #: Non-JSON text messages that answer the heartbeat (OKX's ``pong``).
    plain_replies: frozenset[str] = frozenset()
    #: What the operator should check when the exchange refuses the login.
    refused_hint: str = "check the API key and secret"

    def __init__(
        self,
        tracker: OrderTracker,
        url: str,
        *,
        heartbeat_interval: float = 10.0,
        stale_after: float = 30.0,
        login_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.tracker = tracker
        self.url = url
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.login_timeout = login_timeout
        self.connect_timeout = connect_timeout
        self.backoff = backoff if backoff is not None else Backoff()
        self.connected = False
        self.last_error: str | None = None
        self.refused = False
        self.sessions = 0
        self.skipped_messages = 0
        self.problems = ProblemLog(f"{self.name or type(self).__name__} order stream",
                                   logging.getLogger(type(self).__module__))
        self._log = logging.getLogger(type(self).__module__)

    # --- what a subclass provides ------------------------------------------------------

    async def login(self, ws: WebSocketConnection) -> None:
        """Authenticate and subscribe to the account's orders; raise
        :class:`StreamRefused` when the exchange says no."""
        raise NotImplementedError

    def parse(self, message: Any) -> Iterable[OrderReport]:
        """The order reports in one decoded JSON message (none for an answer or a
        heartbeat reply). Raise ``Resync`` to reconnect, ``ValueError``, ``KeyError``
        or ``TypeError`` for a message that is not understood."""
        raise NotImplementedError

    def heartbeat(self) -> str:
        """The text message sent every ``heartbeat_interval`` seconds."""
        raise NotImplementedError

    def handshake_headers(self) -> list[tuple[str, str]]:
        """Headers of the WebSocket upgrade request, made anew for each connection (an
        exchange that authenticates there, as Upbit does with a JWT); none by default."""
        return []

    # --- for login() ---------------------------------------------------------------------

    async def request(
        self, ws: WebSocketConnection, message: Mapping[str, Any],
        is_answer: Callable[[Any], bool],
    ) -> Any:
        """Send ``message`` and return the first decoded message ``is_answer`` accepts;
        order events arriving meanwhile are recorded as usual."""
        await ws.send_message(orjson.dumps(message).decode())
        while True:
            raw = await ws.get_message()
            decoded = self._decode(raw)
            if decoded is None:
                continue
            if isinstance(decoded, dict) and is_answer(decoded):
                return decoded
            self._deliver(decoded, raw)

    # --- status ------------------------------------------------------------------------------

    def describe(self) -> str:
        """For ``/health`` and logs: ``connected``, ``connecting``, or why it is down."""
        if self.connected:
            return "connected"
        if self.last_error:
            return f"down: {self.last_error}"
        return "connecting"

    # --- running -------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the stream open until cancelled; ``task_status.started()`` at once (the
        account works without the stream, through REST)."""
        task_status.started()
        failures = 0
        try:
            while True:
                connected_at: list[float] = []
                try:
                    reason = await self._session(connected_at)
                    self.refused = False
                except StreamRefused as err:
                    reason = f"refused: {err}"
                    self.refused = True
                self.last_error = reason
                healthy = bool(connected_at) and (
                    trio.current_time() - connected_at[0] >= self.backoff.healthy_after)
                failures = 0 if healthy else failures + 1
                if self.refused:
                    # The longest delay: a key that was refused is not hammered.
                    delay = self.backoff.maximum * (0.5 + random.random())
                    self._log.error(
                        "%s order stream: %s; %s. Fills are learned through REST until it "
                        "is accepted; trying again in %.0f s", self.name, reason,
                        self.refused_hint, delay)
                else:
                    delay = self.backoff.delay(failures) if failures else 0.0
                    level = logging.WARNING if failures else logging.INFO
                    self._log.log(level, "%s order stream: %s; reconnecting in %.1f s "
                                  "(fills are learned through REST meanwhile)",
                                  self.name, reason, delay)
                await trio.sleep(delay)
        finally:
            self.connected = False
            self.tracker.stream_down()

    async def _session(self, connected_at: list[float]) -> str:
        """One connection, until it fails; returns why it ended."""
        try:
            async with open_connection(
                self.url, connect_timeout=self.connect_timeout, close_timeout=2.0,
                headers=self.handshake_headers(),
            ) as ws:
                with trio.move_on_after(self.login_timeout) as login:
                    await self.login(ws)
                if login.cancelled_caught:
                    return f"no answer to the login within {self.login_timeout:g} s"
                connected_at.append(trio.current_time())
                self.sessions += 1
                self.connected = True
                self.last_error = None
                self.tracker.stream_up()
                self._log.info("%s order stream: subscribed to the account's orders",
                               self.name)
                try:
                    return await self._read(ws)
                finally:
                    self.connected = False
                    self.tracker.stream_down()
        except HandshakeFailed as err:
            if err.status in (401, 403):
                # An exchange that authenticates the upgrade itself (Upbit) refused the
                # key: as a refused login, it is not hammered.
                raise StreamRefused(f"the upgrade was refused: {err.detail}") from err
            return f"connection failed: {error_cause(err)}"
        except ConnectionClosed as err:
            return f"connection closed: {err}"
        except OSError as err:
            return f"connection error: {error_cause(err)}"

    async def _read(self, ws: WebSocketConnection) -> str:
        seen = [trio.current_time()]
        reason: str | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._beat, ws)
            nursery.start_soon(_watchdog, seen, self.stale_after, nursery.cancel_scope)
            reason = await self._receive(ws, seen)
            nursery.cancel_scope.cancel()
        return reason if reason is not None else (
            f"no message for {self.stale_after:g} s (stale)")

    async def _receive(self, ws: WebSocketConnection, seen: list[float]) -> str:
        try:
            while True:
                raw = await ws.get_message()
                seen[0] = trio.current_time()
                decoded = self._decode(raw)
                if decoded is None:
                    continue
                try:
                    self._deliver(decoded, raw)
                except Resync as err:
                    return f"resynchronising: {err}"
        except ConnectionClosed as err:
            return f"connection closed: {err}"

    def _decode(self, raw: str | bytes) -> Any:
        """The decoded JSON of a message; ``None`` for a plain heartbeat reply and for
        garbage (skipped and counted)."""
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        if text in self.plain_replies:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._skip("not JSON", raw)
            return None

    def _deliver(self, decoded: Any, raw: str | bytes) -> None:
        try:
            reports = list(self.parse(decoded))
        except Resync:
            raise
        except (ValueError, KeyError, TypeError, IndexError, ArithmeticError) as err:
            self._skip(f"{type(err).__name__}: {err}", raw)
            return
        for report in reports:
            self.tracker.record(report)

    def _skip(self, why: str, raw: str | bytes) -> None:
        self.skipped_messages += 1
        self.problems.warning("bad", "skipped a message that is not understood (%s): %.200r",
                              why, raw)

    async def _beat(self, ws: WebSocketConnection) -> None:
        try:
            while True:
                await trio.sleep(self.heartbeat_interval)
                await ws.send_message(self.heartbeat())
        except ConnectionClosed:
            return  # the reader sees the close and says why


class SignedOrderStream(OrderStream):
    """An :class:`OrderStream` that logs in with the account's secrets: what every
    venue's private stream keeps for its :meth:`~OrderStream.login`.

    ``credentials`` gives the secrets now (key, secret, and what else the venue signs
    with, in the order of ``key_names``, the names of their environment variables);
    ``timestamp_ms`` the venue's clock as the account's REST client measured it. A venue
    sets :attr:`secret_names` when it signs with more than a key and a secret, and
    :attr:`refused_advice`, what the operator should check when the login is refused
    (formatted with ``key_names``); its ``login`` starts with :meth:`secrets`."""

    #: What the secrets are called in "... is not set".
    secret_names: tuple[str, ...] = ("API key", "secret")
    #: What to check when the venue refuses the login, with ``{0}``, ``{1}``... the
    #: names of the variables holding the secrets.
    refused_advice: str = "check the key in {0} and its secret in {1}"

    def __init__(
        self,
        tracker: OrderTracker,
        url: str,
        *,
        credentials: Callable[[], tuple[str | None, ...]],
        timestamp_ms: Callable[[], int],
        key_names: Sequence[str],
        **options: Any,
    ) -> None:
        super().__init__(tracker, url, **options)
        self._credentials = credentials
        self.timestamp_ms = timestamp_ms
        self.refused_hint = self.refused_advice.format(*key_names)

    def secrets(self) -> tuple[str, ...]:
        """The secrets to log in with; :class:`StreamRefused` when one is not set."""
        values = self._credentials()
        if not all(values):
            *most, last = self.secret_names
            raise StreamRefused(f"the {', '.join(most)} or {last} is not set")
        return tuple(value for value in values if value)


async def _watchdog(seen: list[float], stale_after: float, reader: trio.CancelScope) -> None:
    """Cancel ``reader`` once no message has come for ``stale_after`` seconds."""
    while True:
        deadline = seen[0] + stale_after
        if trio.current_time() >= deadline:
            reader.cancel()
            return
        await trio.sleep_until(deadline)
