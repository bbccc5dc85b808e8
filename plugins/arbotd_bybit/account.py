"""The Bybit v5 spot trading account of ``live`` mode: an :class:`arbotd.ExchangeAccount`.

Facts (exchange-protocols.md 2.2 and 2.3; Bybit's ``order/create-order.mdx``,
``order/open-order.mdx``, ``order/execution.mdx`` and ``market/instrument.mdx``):

* ``POST /v5/order/create`` answers only an acknowledgement (``orderId``,
  ``orderLinkId``): the order's outcome is read from ``GET /v5/order/realtime`` (which,
  queried by ``orderLinkId``, returns closed orders too) and its fills and fees from
  ``GET /v5/execution/list``. After a Bybit restart closed orders are only in
  ``/v5/order/history``, which is asked when realtime does not know the order.
* Limit orders go out as ``timeInForce = IOC``. A spot market Buy's ``qty`` is in the
  quote currency unless ``marketUnit = baseCoin``, which every market order here sets.
* ``orderLinkId`` is at most 36 letters, digits, ``-`` and ``_``, and unique: a retried
  create is refused as a duplicate, and the existing order is looked up instead.
* An IOC order that filled partly ends ``PartiallyFilledCanceled``; one that did not fill
  ends ``Cancelled``.
* The private stream (:mod:`arbotd_bybit.private`) reports the order and each execution
  (``execId``, the same id as ``/v5/execution/list``) as they happen: after the create
  is acknowledged the account waits up to ``stream_wait`` seconds for the stream to tell
  the order's end and every execution, and asks REST only when it does not (down,
  reconnected since, silent). Executions heard and listed are merged by ``execId``.
* Spot rules: ``priceFilter.tickSize``, ``lotSizeFilter.basePrecision`` (the quantity
  step), ``minOrderQty``, ``maxLimitOrderQty``/``maxMarketOrderQty`` (older answers:
  ``maxOrderQty``), ``minOrderAmt`` (minimum notional), ``status`` (``Trading``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import httpx
import trio

from arbotd import (
    Fill,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Side,
    TemporaryExchangeError,
    split_symbol,
)
from arbotd.exchange import RecentIds, TrackedOrder, VenueAccount, merge_fills
from arbotd.exchange.rules import SymbolRules, decimal_text
from arbotd_bybit.config import BybitConfig
from arbotd_bybit.orders import order_status, outcome_reason
from arbotd_bybit.private import BybitOrderStream
from arbotd_bybit.rest import AUTH_CODES, BybitRest, BybitRetCodeError
from arbotd_bybit.symbols import to_bybit

__all__ = ["BybitAccount", "order_status", "parse_instrument", "parse_wallet"]

log = logging.getLogger(__name__)

EXCHANGE = "bybit"
CATEGORY = "spot"
# orderLinkId rules (create-order.mdx).
_ORDER_LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
# A create refused because the orderLinkId exists: 170141 (spot, exchange-protocols.md
# 2.3) and 110072 (the unified trading engine's "OrderLinkedID is duplicate").
DUPLICATE_CODES = frozenset({170141, 110072})
# Cancelling an order that does not exist or is already final (error.mdx; 2.3).
CANCEL_NOTHING_CODES = frozenset({110001, 110008, 110010, 170213})


def _decimal(value: Any) -> Decimal:
    """A Bybit number (a string, ``""`` for none) as a Decimal."""
    if value in (None, ""):
        return Decimal(0)
    return Decimal(str(value))


def parse_instrument(item: Mapping[str, Any]) -> SymbolRules:
    """One spot entry of ``/v5/market/instruments-info`` -> its rules."""
    lot = item["lotSizeFilter"]
    max_limit = lot.get("maxLimitOrderQty") or lot.get("maxOrderQty")
    max_market = lot.get("maxMarketOrderQty")
    status = str(item["status"])
    return SymbolRules(
        symbol=str(item["symbol"]),
        tick_size=_decimal(item["priceFilter"]["tickSize"]),
        step_size=_decimal(lot["basePrecision"]),
        min_qty=_decimal(lot.get("minOrderQty")),
        max_qty=_decimal(max_limit) if max_limit else None,
        min_notional=_decimal(lot.get("minOrderAmt")),
        max_market_qty=_decimal(max_market) if max_market else None,
        trading=status == "Trading",
        status=status,
    )


def parse_wallet(result: Mapping[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """The ``result`` of ``/v5/account/wallet-balance`` -> asset -> (free, locked); free is
    the wallet balance less what open orders lock."""
    balances: dict[str, tuple[Decimal, Decimal]] = {}
    for account in result["list"]:
        for coin in account["coin"]:
            total = _decimal(coin.get("walletBalance"))
            locked = _decimal(coin.get("locked"))
            balances[str(coin["coin"])] = (total - locked, locked)
    return balances


def _fee_asset(order: Order) -> str:
    """The asset of a spot taker fee when an execution does not name it: a buy pays in the
    base coin (what it receives), a sell in the quote coin (Bybit's ``enum.mdx``, "Spot
    Fee Currency Instruction")."""
    base, quote = split_symbol(to_bybit(order.symbol))
    return base if order.side is Side.BUY else quote


class BybitAccount(VenueAccount[BybitConfig, BybitRest]):
    """A Bybit unified trading account, spot only.

    The REST client is made on first use with the keys then in the environment, and
    dropped by :meth:`close`. ``poll_interval`` and ``final_timeout`` bound how long
    :meth:`place_order` waits for an order to be final and its fills to be listed.
    """

    name = EXCHANGE
    stream_title = "the private stream"

    def __init__(
        self,
        settings: BybitConfig,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        poll_interval: float = 0.1,
        final_timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        stream_wait: float = 1.0,
        stream_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.final_timeout = final_timeout
        self.rules_loaded_at: float | None = None
        # orderLinkId -> local time its placement went unanswered
        self._unanswered: RecentIds[float] = RecentIds()
        # orderLinkIds Bybit acknowledged with an orderId: they exist, listed or not.
        self._acknowledged: RecentIds[str] = RecentIds()
        super().__init__(settings, clock=clock, transport=transport, stream_wait=stream_wait,
                         stream_options=stream_options)

    def account_key(self) -> tuple[Any, ...]:
        """The settings an account depends on: a reload changing others keeps it."""
        settings = self.settings
        return (
            settings.resolved_rest_url(),
            settings.api_key_env,
            settings.api_secret_env,
            settings.recv_window_ms,
            settings.request_budget_fraction,
            settings.resolved_order_stream_url(),
        )

    # --- credentials and connection --------------------------------------------------------

    def make_order_stream(self, url: str, **options: Any) -> BybitOrderStream:
        return BybitOrderStream(
            self.orders, url, credentials=self.credentials, timestamp_ms=self.timestamp_ms,
            expires_after_ms=self.settings.recv_window_ms,
            key_names=self.settings.credential_variables(), **options)

    def make_rest(self) -> BybitRest:
        key, secret = self.credentials()
        return BybitRest(
            key, secret, self.settings.resolved_rest_url(),
            recv_window=self.settings.recv_window_ms,
            timeout=self.timeout,
            budget_fraction=self.settings.request_budget_fraction,
            clock=self.clock,
            transport=self._transport,
        )

    # --- rules and balances ------------------------------------------------------------------

    async def load_rules(self) -> None:
        """Every spot symbol's rules (``/v5/market/instruments-info``; spot is one page)."""
        result = await self.rest.public(
            "/v5/market/instruments-info", {"category": CATEGORY}
        )
        try:
            items = list(result["list"])
        except (KeyError, TypeError) as err:
            raise TemporaryExchangeError(
                EXCHANGE, "malformed /v5/market/instruments-info answer") from err
        rules: dict[str, SymbolRules] = {}
        bad = 0
        for item in items:
            try:
                parsed = parse_instrument(item)
            except (KeyError, TypeError, InvalidOperation):
                bad += 1
                continue
            rules[parsed.symbol] = parsed
        if bad:
            log.warning("bybit: %d instruments were not understood and are left out", bad)
        self._rules = rules
        self.rules_loaded_at = self.clock()

    def rules(self, symbol: str) -> SymbolRules | None:
        return self._rules.get(to_bybit(symbol))

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        result = await self.rest.get("/v5/account/wallet-balance", {"accountType": "UNIFIED"})
        try:
            return parse_wallet(result)
        except (KeyError, TypeError, InvalidOperation) as err:
            raise TemporaryExchangeError(
                EXCHANGE, "malformed /v5/account/wallet-balance answer") from err

    # --- orders ------------------------------------------------------------------------------

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        link_id = order.client_order_id
        if not _ORDER_LINK_ID.fullmatch(link_id):
            raise PermanentExchangeError(
                EXCHANGE,
                f"client order id {link_id!r} is not a valid orderLinkId (1-36 letters, "
                "digits, - and _)",
            )
        if order.quantity <= 0 or order.price < 0:
            raise PermanentExchangeError(
                EXCHANGE, f"order {link_id}: quantity must be positive and price not "
                f"negative (got {order.quantity} at {order.price})")
        body: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": to_bybit(order.symbol),
            "side": "Buy" if order.side is Side.BUY else "Sell",
            "qty": decimal_text(order.quantity),
            "timeInForce": "IOC",
            "orderLinkId": link_id,
        }
        if order.price > 0:
            body |= {"orderType": "Limit", "price": decimal_text(order.price)}
        else:
            # A spot market Buy's qty is quote currency by default (2.2).
            body |= {"orderType": "Market", "marketUnit": "baseCoin"}
        session = self.orders.session_if_up()
        try:
            result = await self.rest.post("/v5/order/create", body)
        except BybitRetCodeError as err:
            if err.code in DUPLICATE_CODES:
                log.info("bybit: order %s exists already (a retried request); asking for it",
                         link_id)
                return await self._until_final(order)
            if err.code in AUTH_CODES:
                raise
            return attrs.evolve(order, status=OrderStatus.REJECTED, reason=str(err)), []
        except TemporaryExchangeError:
            # The answer was lost (a timeout, a 5xx): the request, signed before now, may
            # still reach Bybit within its recv window (see query_order).
            self._unanswered.remember(link_id, self.clock())
            heard = await self.heard(order, session)  # the stream may have seen it
            if heard is not None:
                return heard
            raise
        order_id = result.get("orderId") if isinstance(result, dict) else None
        if order_id:
            order = attrs.evolve(order, exchange_order_id=str(order_id))
            self._acknowledged.remember(link_id, str(order_id))
        heard = await self.heard(order, session)
        if heard is not None:
            return heard
        return await self._until_final(order)

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        """Bybit accepts a request until its recv window has passed, so an order whose
        placement went unanswered moments ago may not be listed yet: "not known" means
        "never placed" only once that window is over. An order the private stream has told
        all of needs no request."""
        tracked = self.orders.complete(order.client_order_id)
        if tracked is not None:
            return self.told(order, tracked)
        sent = self._unanswered.get(order.client_order_id)
        if sent is not None:
            left = sent + self.settings.recv_window_ms / 1000.0 - self.clock()
            if left > 0 and await self._order_record(order) is None:
                await trio.sleep(left)
        # An order Bybit acknowledged exists even while its lists do not show it yet:
        # "not known" would call a live order never placed.
        acknowledged = order.client_order_id in self._acknowledged
        return await self._until_final(order, must_exist=not acknowledged)

    async def cancel_order(self, order: Order) -> None:
        body = {
            "category": CATEGORY,
            "symbol": to_bybit(order.symbol),
            "orderLinkId": order.client_order_id,
        }
        try:
            await self.rest.post("/v5/order/cancel", body)
        except BybitRetCodeError as err:
            if err.code not in CANCEL_NOTHING_CODES:
                raise
            log.debug("bybit: nothing to cancel for %s (%s)", order.client_order_id, err)

    def told(self, order: Order, tracked: TrackedOrder) -> tuple[Order, list[Fill]]:
        assert tracked.status is not None and tracked.filled is not None
        final = attrs.evolve(
            order, status=tracked.status, filled_quantity=tracked.filled,
            exchange_order_id=tracked.exchange_order_id or order.exchange_order_id,
            reason=tracked.reason)
        return final, merge_fills(tracked.fills_of(order, EXCHANGE, _fee_asset(order)))

    async def _until_final(
        self, order: Order, *, must_exist: bool = False
    ) -> tuple[Order, list[Fill]]:
        """Ask until the order is final and every execution of it is listed, within
        ``final_timeout``."""
        with trio.move_on_after(self.final_timeout):
            while True:
                record = await self._order_record(order)
                if record is None and must_exist:
                    raise PermanentExchangeError(
                        EXCHANGE, f"order {order.client_order_id} is not known to Bybit")
                if record is not None:
                    done = await self._final(order, record)
                    if done is not None:
                        return done
                await trio.sleep(self.poll_interval)
        raise TemporaryExchangeError(
            EXCHANGE,
            f"order {order.client_order_id} was not final after {self.final_timeout:g} s; "
            "ask again",
        )

    async def _order_record(self, order: Order) -> dict[str, Any] | None:
        """The order, from realtime (recent orders, open or closed) or else history."""
        params = {
            "category": CATEGORY,
            "symbol": to_bybit(order.symbol),
            "orderLinkId": order.client_order_id,
        }
        for path in ("/v5/order/realtime", "/v5/order/history"):
            result = await self.rest.get(path, params)
            try:
                for record in result["list"]:
                    if record.get("orderLinkId") == order.client_order_id:
                        return dict(record)
            except (KeyError, TypeError) as err:
                raise TemporaryExchangeError(EXCHANGE, f"malformed {path} answer") from err
        return None

    async def _final(
        self, order: Order, record: Mapping[str, Any]
    ) -> tuple[Order, list[Fill]] | None:
        """The order's outcome and fills once it is final and all its executions are
        listed; ``None`` to ask again."""
        try:
            filled = _decimal(record["cumExecQty"])
            status = order_status(str(record["orderStatus"]), filled)
        except (KeyError, InvalidOperation) as err:
            raise TemporaryExchangeError(EXCHANGE, "malformed order record") from err
        if status is None:
            return None
        listed = await self._fills(order) if filled > 0 else {}
        # Executions the stream heard and the list does not show yet complete it.
        tracked = self.orders.get(order.client_order_id)
        fills = merge_fills(
            listed, tracked.fills_of(order, EXCHANGE, _fee_asset(order)) if tracked else {})
        if sum((f.quantity for f in fills), Decimal(0)) < filled:
            return None  # the execution list lags the order
        final = attrs.evolve(
            order,
            status=status,
            filled_quantity=filled,
            exchange_order_id=str(record.get("orderId") or "") or order.exchange_order_id,
            reason=outcome_reason(str(record["orderStatus"]),
                                  str(record.get("rejectReason") or ""), status),
        )
        return final, fills

    async def _fills(self, order: Order) -> dict[str, Fill]:
        """Every execution of the order (``/v5/execution/list``), by ``execId``."""
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": to_bybit(order.symbol),
            "orderLinkId": order.client_order_id,
            "limit": 100,
        }
        fills: dict[str, Fill] = {}
        for _ in range(20):  # 2,000 executions: more than any one IOC order gets
            result = await self.rest.get("/v5/execution/list", params)
            try:
                for execution in result["list"]:
                    if execution.get("orderLinkId") != order.client_order_id:
                        continue
                    fee_asset = execution.get("feeCurrency") or _fee_asset(order)
                    fills[str(execution["execId"])] = Fill(
                        order_id=order.client_order_id,
                        trade_id=order.trade_id,
                        exchange=EXCHANGE,
                        symbol=order.symbol,
                        side=order.side,
                        price=_decimal(execution["execPrice"]),
                        quantity=_decimal(execution["execQty"]),
                        fee=_decimal(execution.get("execFee")),
                        fee_asset=str(fee_asset),
                        timestamp=int(execution["execTime"]) / 1000.0,
                    )
                cursor = result.get("nextPageCursor")
            except (KeyError, TypeError, ValueError, InvalidOperation) as err:
                raise TemporaryExchangeError(
                    EXCHANGE, "malformed /v5/execution/list answer") from err
            if not cursor:
                break
            params["cursor"] = cursor
        # Bybit lists the newest first: oldest first here, in the order they happened.
        return dict(reversed(fills.items()))
