"""The Bitget spot trading account of ``live`` mode: rules, balances, orders.

Facts (bitget-upbit-protocols.md 1.2, Bitget's ``spot/trade/*`` and
``spot/market/*``):

* Rules come from ``GET /api/v2/spot/public/symbols``, which has no tick or lot size:
  the price tick is 10^-``pricePrecision``, the quantity step 10^-``quantityPrecision``,
  the minimum notional ``minTradeUSDT`` (a USDT value, so applied to USDT pairs only),
  and only ``status: "online"`` trades.
* Orders are ``POST /api/v2/spot/trade/place-order`` by ``clientOid``. An
  immediate-or-cancel limit order is ``orderType: "limit", force: "ioc"``; a market sell
  is ``orderType: "market"`` sized in the base coin. A market *buy* is sized in the
  quote coin on Bitget, where arbotd's quantities are in the base coin, so it is sent as
  an immediate-or-cancel limit order at the best ask (``/api/v2/spot/market/tickers``)
  raised by half the symbol's ``buyLimitPriceRatio`` (Bitget's price band, which
  refuses limits further out): it buys exactly the quantity asked, or what the book
  holds up to that price.
* The answer to a placement is an acknowledgement only. The order's state is
  ``GET /api/v2/spot/trade/orderInfo?clientOid=`` (an array): ``status``, ``baseVolume``
  (filled), ``priceAvg``, ``feeDetail`` (a JSON string: ``newFees.t`` is the total fee,
  negative, in the coin received). Bitget finds an order by ``clientOid`` for 2 hours
  only, so an order whose ``orderId`` is known is asked for by it. Its executions are
  ``GET /api/v2/spot/trade/fills?symbol=&orderId=``: ``tradeId``, ``priceAvg``,
  ``size``, ``feeDetail.totalFee`` (negative) in ``feeDetail.feeCoin``, ``cTime`` (ms).
  Should the fills not add up, the order's totals stand in for them.
* 43001/40109 are "order does not exist"; 43118/45034 a ``clientOid`` already taken.

A retried placement never creates a second order. Every placement carries
``requestTime`` and ``receiveWindow`` (Bitget refuses a request received after their
sum, 40078): a retry of an order this account already sent waits for that time to
pass, then looks the order up and sends it again only when Bitget never got it; an
order Bitget calls a duplicate is looked up too. After a restart (no memory of what was
sent) the daemon's reconciliation asks by client order id.

The private ``orders`` channel (:mod:`arbotd_bitget.private`) reports each fill with the
``tradeId`` of the fills list: after a placement is acknowledged the account waits up
to ``stream_wait`` seconds for the channel to tell the order's end and every fill, and
asks REST only when it does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import httpx
import orjson
import trio

from arbotd import (
    Fill,
    Order,
    OrderStatus,
    PermanentExchangeError,
    TemporaryExchangeError,
    split_symbol,
)
from arbotd.exchange import (
    RecentIds,
    SymbolRules,
    TrackedOrder,
    VenueAccount,
    ceil_to,
    decimal_text,
    merge_fills,
)
from arbotd_bitget.codes import (
    DUPLICATE_CLIENT_ID,
    ORDER_FINAL,
    ORDER_NOT_FOUND,
)
from arbotd_bitget.config import BitgetConfig
from arbotd_bitget.orders import FINAL_STATES, bitget_client_oid, final_status, outcome_reason
from arbotd_bitget.private import BitgetOrderStream
from arbotd_bitget.rest import BitgetError, BitgetRest
from arbotd_bitget.symbols import from_bitget, to_bitget

__all__ = ["BitgetAccount", "order_fee", "parse_balances", "parse_symbols"]

log = logging.getLogger(__name__)

EXCHANGE = "bitget"
SYMBOLS = "/api/v2/spot/public/symbols"
TICKERS = "/api/v2/spot/market/tickers"
ASSETS = "/api/v2/spot/account/assets"
PLACE = "/api/v2/spot/trade/place-order"
ORDER_INFO = "/api/v2/spot/trade/orderInfo"
CANCEL = "/api/v2/spot/trade/cancel-order"
FILLS = "/api/v2/spot/trade/fills"

# Bitget refuses a receiveWindow over 60 s (40079).
MAX_RECEIVE_WINDOW_MS = 60_000
# The price band when a symbol does not give its own (BTCUSDT's is 0.05).
DEFAULT_PRICE_BAND = Decimal("0.05")


def _decimal(value: Any) -> Decimal:
    """Bitget's number strings, where "" means none (0)."""
    return Decimal(str(value)) if value not in ("", None) else Decimal(0)


def parse_symbols(data: Iterable[Any]) -> tuple[dict[str, SymbolRules], dict[str, Decimal]]:
    """The ``data`` of ``/api/v2/spot/public/symbols`` -> rules per neutral symbol, and
    each symbol's buy price band (``buyLimitPriceRatio``). An entry that cannot be read
    is left out (and logged)."""
    rules: dict[str, SymbolRules] = {}
    bands: dict[str, Decimal] = {}
    skipped = 0
    for item in data:
        try:
            symbol = from_bitget(item["symbol"])
            status = str(item.get("status", ""))
            min_usdt = _decimal(item.get("minTradeUSDT"))
            rules[symbol] = SymbolRules(
                symbol,
                tick_size=Decimal(1).scaleb(-int(item["pricePrecision"])),
                step_size=Decimal(1).scaleb(-int(item["quantityPrecision"])),
                min_notional=min_usdt if item.get("quoteCoin") == "USDT" else Decimal(0),
                trading=status == "online",
                status=status,
            )
            band = _decimal(item.get("buyLimitPriceRatio"))
            bands[symbol] = band if band > 0 else DEFAULT_PRICE_BAND
        except (AttributeError, KeyError, TypeError, ValueError, InvalidOperation):
            skipped += 1
    if skipped:
        log.warning("bitget: %d symbols could not be read and are left out", skipped)
    return rules, bands


def parse_balances(data: list[Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """The ``data`` of ``/api/v2/spot/account/assets`` -> asset -> (free, locked):
    Bitget's ``available``, and ``frozen`` (held by open orders) plus ``locked``."""
    return {
        str(d["coin"]): (_decimal(d.get("available")),
                         _decimal(d.get("frozen")) + _decimal(d.get("locked")))
        for d in data
    }


class BitgetAccount(VenueAccount[BitgetConfig, BitgetRest]):
    """A Bitget spot account: an :class:`arbotd.ExchangeAccount`.

    Created whether or not its keys are set (they are read once, here); it talks to
    Bitget only once used. Two accounts built from equal settings compare equal.
    """

    name = EXCHANGE
    stream_title = "the orders channel"
    keys_read_at_start = True

    def __init__(
        self,
        settings: BitgetConfig,
        *,
        timeout: float = 10.0,
        poll_interval: float = 0.2,
        poll_attempts: int = 25,
        clock: Any = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        stream_wait: float = 1.0,
        stream_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.poll_attempts = poll_attempts
        self._bands: dict[str, Decimal] = {}
        # clientOid -> the time (ms, exchange clock) after which Bitget no longer
        # executes the placement this account sent.
        self._sent: RecentIds[int] = RecentIds()
        super().__init__(settings, clock=clock, transport=transport, stream_wait=stream_wait,
                         stream_options=stream_options)

    def make_order_stream(self, url: str, **options: Any) -> BitgetOrderStream:
        # What the orders channel tells is kept by clientOid.
        return BitgetOrderStream(
            self.orders, url, credentials=self.credentials, timestamp_ms=self.timestamp_ms,
            key_names=self.settings.credential_variables(), **options)

    def make_rest(self) -> BitgetRest:
        key, secret, passphrase = self.credentials()
        return BitgetRest(
            key, secret, passphrase,
            self.settings.resolved_rest_url(),
            demo=self.settings.testnet,
            timeout=self.timeout,
            budget_fraction=self.settings.request_budget_fraction,
            clock=self.clock,
            transport=self._transport,
        )

    async def load_rules(self) -> None:
        data = await self.rest.request("GET", SYMBOLS)
        rules, bands = parse_symbols(data if isinstance(data, list) else [])
        if not rules:
            raise TemporaryExchangeError(EXCHANGE, f"{SYMBOLS} listed no spot symbol")
        self._rules, self._bands = rules, bands

    def rules(self, symbol: str) -> SymbolRules | None:
        return self._rules.get(symbol.upper())

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        data = await self.rest.request("GET", ASSETS, private=True)
        try:
            return parse_balances(data)
        except (KeyError, TypeError, InvalidOperation) as err:
            raise TemporaryExchangeError(EXCHANGE, f"malformed {ASSETS} answer") from err

    # --- orders ------------------------------------------------------------------------------

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        refused = self.refused_by_rules(order)
        if refused is not None:
            return refused
        symbol = to_bitget(order.symbol)
        oid = bitget_client_oid(order.client_order_id)
        earlier = self._sent.get(oid)
        if earlier is not None:
            # Sent before and its answer lost: Bitget may hold it. Once the earlier
            # request's window has passed it can no longer be executed, so look it up
            # then, and send it again only when Bitget never got it.
            await self._wait_until(earlier)
            detail = await self._detail(symbol, oid)
            if detail is not None:
                return await self._settle(order, symbol, oid, detail)
        body = await self._order_body(order, symbol, oid)
        window_ms = min(int(self.timeout * 1000), MAX_RECEIVE_WINDOW_MS)
        request_time = self.rest.timestamp_ms()
        body |= {"requestTime": str(request_time), "receiveWindow": str(window_ms)}
        self._sent.remember(oid, request_time + window_ms)
        session = self.orders.session_if_up()
        try:
            await self.rest.request("POST", PLACE, body=body, private=True)
        except BitgetError as err:
            if err.code in DUPLICATE_CLIENT_ID:
                log.info("bitget: order %s exists already; looking it up",
                         order.client_order_id)
                return await self._settle(order, symbol, oid)
            reason = f"Bitget refused the order: {err}"
            return attrs.evolve(order, status=OrderStatus.REJECTED, reason=reason), []
        except TemporaryExchangeError:
            heard = await self.heard(order, session, oid)  # the stream may know
            if heard is not None:
                return heard
            raise
        heard = await self.heard(order, session, oid)
        if heard is not None:
            return heard
        return await self._settle(order, symbol, oid)

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        symbol = to_bitget(order.symbol)
        oid = bitget_client_oid(order.client_order_id)
        tracked = self.orders.complete(oid)
        if tracked is not None:  # the orders channel told all of it
            return self.told(order, tracked)
        detail = await self._detail(symbol, oid, order.exchange_order_id)
        deadline = self._sent.get(oid)
        # A request this account sent (answered 5xx, say) may still be executed until
        # its window ends: only after that does "does not exist" mean "never placed".
        if detail is None and deadline is not None and await self._wait_until(deadline):
            detail = await self._detail(symbol, oid, order.exchange_order_id)
        if detail is None:
            raise PermanentExchangeError(
                EXCHANGE, f"order {order.client_order_id} is not known to Bitget "
                          "(never placed)")
        return await self._settle(order, symbol, oid, detail)

    async def cancel_order(self, order: Order) -> None:
        symbol = to_bitget(order.symbol)
        oid = bitget_client_oid(order.client_order_id)
        try:
            await self.rest.request("POST", CANCEL, body={"symbol": symbol, "clientOid": oid},
                                    private=True)
            return
        except BitgetError as err:
            refusal = err
        # Refused: fine when the order is already final (or was never placed).
        detail = await self._detail(symbol, oid, order.exchange_order_id)
        if (detail is None or detail.get("status") in FINAL_STATES
                or refusal.code in ORDER_FINAL):
            return
        raise PermanentExchangeError(
            EXCHANGE, f"cancelling order {order.client_order_id}: {refusal}")

    # --- helpers -------------------------------------------------------------------------------

    async def _wait_until(self, deadline_ms: int) -> bool:
        """Sleep until ``deadline_ms`` (exchange clock); whether it had to."""
        wait_ms = deadline_ms - self.rest.timestamp_ms()
        if wait_ms <= 0:
            return False
        await trio.sleep(wait_ms / 1000)
        return True

    def told(self, order: Order, tracked: TrackedOrder) -> tuple[Order, list[Fill]]:
        assert tracked.status is not None and tracked.filled is not None
        final = attrs.evolve(
            order, status=tracked.status, filled_quantity=tracked.filled,
            exchange_order_id=tracked.exchange_order_id or order.exchange_order_id,
            reason=outcome_reason(tracked.status, tracked.filled, order.quantity))
        return final, merge_fills(tracked.fills_of(order, EXCHANGE))

    async def _order_body(self, order: Order, symbol: str, oid: str) -> dict[str, str]:
        body = {"symbol": symbol, "side": order.side.value, "clientOid": oid,
                "size": decimal_text(order.quantity)}
        if order.price > 0:
            return body | {"orderType": "limit", "force": "ioc",
                           "price": decimal_text(order.price)}
        if order.side.value == "sell":
            return body | {"orderType": "market", "force": "ioc"}
        # A market buy would be sized in the quote coin: an IOC limit at the edge of the
        # price band buys the base quantity asked instead.
        return body | {"orderType": "limit", "force": "ioc",
                       "price": decimal_text(await self._market_buy_limit(order.symbol))}

    async def _market_buy_limit(self, symbol: str) -> Decimal:
        """The limit of a market buy: the best ask raised by half the price band, on the
        tick (rounded up, the band leaves room)."""
        data = await self.rest.request("GET", TICKERS, {"symbol": to_bitget(symbol)})
        try:
            ask = Decimal(str(data[0]["askPr"]))
        except (IndexError, KeyError, TypeError, InvalidOperation) as err:
            raise TemporaryExchangeError(EXCHANGE, f"malformed {TICKERS} answer") from err
        if ask <= 0:
            raise TemporaryExchangeError(EXCHANGE, f"{symbol}: no ask to buy at market")
        band = self._bands.get(symbol, DEFAULT_PRICE_BAND)
        rules = self._rules.get(symbol)
        limit = ask * (1 + band / 2)
        return ceil_to(limit, rules.tick_size) if rules is not None else limit

    async def _detail(self, symbol: str, oid: str, order_id: str | None = None
                      ) -> dict[str, Any] | None:
        """The order's details, ``None`` when Bitget does not know it. By ``orderId``
        when it is known (Bitget finds a ``clientOid`` for 2 hours only)."""
        params = {"orderId": order_id} if order_id else {"clientOid": oid}
        try:
            data = await self.rest.request("GET", ORDER_INFO, params, private=True)
        except BitgetError as err:
            if err.code in ORDER_NOT_FOUND:
                return None
            raise
        if isinstance(data, dict):
            data = [data]
        if not data or not isinstance(data[0], dict):
            return None
        return data[0]

    async def _settle(
        self, order: Order, symbol: str, oid: str, detail: dict[str, Any] | None = None
    ) -> tuple[Order, list[Fill]]:
        """Wait (boundedly) until the order is final, then return it with its fills."""
        queries = 0
        while detail is None or detail.get("status") not in FINAL_STATES:
            if queries >= self.poll_attempts:
                state = detail.get("status") if detail else "unknown"
                raise TemporaryExchangeError(
                    EXCHANGE, f"order {order.client_order_id} is still {state} after "
                              f"{queries} queries; its outcome is not known yet")
            # Just placed, an IOC order is usually final at the first query (and can be
            # missing from the details for a moment).
            if detail is not None or queries:
                await trio.sleep(self.poll_interval)
            detail = await self._detail(symbol, oid)
            queries += 1
        try:
            return await self._result(order, symbol, detail)
        except (KeyError, TypeError, ValueError, InvalidOperation) as err:
            raise TemporaryExchangeError(
                EXCHANGE, f"order {order.client_order_id}: malformed order details") from err

    async def _result(self, order: Order, symbol: str, detail: dict[str, Any]
                      ) -> tuple[Order, list[Fill]]:
        filled = _decimal(detail.get("baseVolume"))
        order_id = str(detail["orderId"])
        force = None if detail.get("orderType") == "market" else detail.get("force", "ioc")
        status = final_status(str(detail["status"]), filled, force)
        assert status is not None  # _settle waits for a final state
        final = attrs.evolve(order, status=status, filled_quantity=filled,
                             exchange_order_id=order_id,
                             reason=outcome_reason(status, filled, order.quantity))
        fills = await self._fills(order, symbol, order_id, filled, detail) if filled else []
        return final, fills

    async def _fills(self, order: Order, symbol: str, order_id: str, filled: Decimal,
                     detail: dict[str, Any]) -> list[Fill]:
        """The order's executions. Should they not add up to what the order says it filled
        (the fills list can lag behind the order), the order's own totals stand in for
        them as one fill, so no quantity or fee is ever lost."""
        for attempt in range(3):
            if attempt:
                await trio.sleep(self.poll_interval)
            rows = await self.rest.request(
                "GET", FILLS, {"symbol": symbol, "orderId": order_id}, private=True)
            try:
                listed = {
                    str(r["tradeId"]): self._fill(
                        order, r["priceAvg"], r["size"], r["feeDetail"]["totalFee"],
                        r["feeDetail"]["feeCoin"], r["cTime"])
                    for r in rows or () if str(r.get("orderId")) == order_id
                }
            except (KeyError, TypeError, AttributeError, InvalidOperation, ValueError):
                listed = {}
            tracked = self.orders.get(bitget_client_oid(order.client_order_id))
            fills = merge_fills(listed, tracked.fills_of(order, EXCHANGE) if tracked else {})
            if sum((f.quantity for f in fills), Decimal(0)) == filled:
                return fills
        log.info("bitget: fills of order %s incomplete; using its totals",
                 order.client_order_id)
        base, quote = _coins(order.symbol)
        return [self._fill(order, detail["priceAvg"], detail["baseVolume"],
                           order_fee(detail), base if order.side.value == "buy" else quote,
                           detail.get("uTime") or detail["cTime"])]

    @staticmethod
    def _fill(order: Order, price: Any, quantity: Any, fee: Any, fee_asset: Any, ts: Any
              ) -> Fill:
        return Fill(
            order_id=order.client_order_id,
            trade_id=order.trade_id,
            exchange=EXCHANGE,
            symbol=order.symbol,
            side=order.side,
            price=Decimal(str(price)),
            quantity=Decimal(str(quantity)),
            # Bitget writes a charge as a negative fee; a Fill's fee is what was charged.
            fee=-_decimal(fee),
            fee_asset=str(fee_asset),
            timestamp=int(ts) / 1000.0,
        )


def order_fee(detail: dict[str, Any]) -> Decimal:
    """The total fee of an order record (negative: a charge): ``feeDetail`` is a JSON
    string whose ``newFees.t`` is it."""
    fee_detail = detail.get("feeDetail") or "{}"
    if isinstance(fee_detail, str):
        fee_detail = orjson.loads(fee_detail)
    return _decimal((fee_detail.get("newFees") or {}).get("t"))


def _coins(symbol: str) -> tuple[str, str]:
    return split_symbol(symbol)
