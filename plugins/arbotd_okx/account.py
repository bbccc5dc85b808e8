"""The OKX spot trading account of ``live`` mode: rules, balances, orders.

Facts (exchange-protocols.md section 3.2, from OKX's ``#order-book-trading-trade-*``):

* Spot rules come from ``GET /api/v5/public/instruments?instType=SPOT``: ``tickSz``,
  ``lotSz``, ``minSz`` and ``state`` ("live" trades). OKX has no minimum notional.
* Orders are ``POST /api/v5/trade/order`` with ``tdMode: "cash"`` (spot without
  margin). An immediate-or-cancel limit order is ``ordType: "ioc"``; a market order is
  ``ordType: "market"``, whose ``sz`` is in the *quote* currency for a buy unless
  ``tgtCcy: "base_ccy"`` says otherwise, so every market order sends it.
* ``clOrdId`` is at most 32 letters and digits. Client order ids that are not are sent
  as a digest of themselves (the same id always gives the same ``clOrdId``).
* The order's state is ``GET /api/v5/trade/order?instId=&clOrdId=``: ``state`` (``live``,
  ``partially_filled``, ``filled``, ``canceled``, ``mmp_canceled``), ``accFillSz``,
  ``avgPx``, and ``fee`` (negative: a charge) in ``feeCcy``. A partly filled IOC order
  ends ``canceled`` with ``accFillSz > 0``. Its executions are
  ``GET /api/v5/trade/fills?instType=SPOT&instId=&ordId=`` (unverified, not in the
  research notes: ``fillPx``, ``fillSz``, ``fee``, ``feeCcy``, ``ts`` per execution, the
  shape of OKX's published example). Should the fills not add up, the order's totals
  stand in for them.
* 51603 is "order does not exist". 51016 ("Duplicated clOrdId", unverified, not in the
  research notes) answers a placement whose ``clOrdId`` is taken; the account does not
  rely on it alone (see below).
* ``expTime`` (a request header, ms): OKX does not execute a placement it receives after
  that time (exchange-protocols.md 3.2).

The private ``orders`` channel (:mod:`arbotd_okx.private`) reports each fill with the
same ``tradeId`` as the fills list: after a placement is acknowledged the account waits
up to ``stream_wait`` seconds for the channel to tell the order's end and every fill,
and asks REST only when it does not (down, reconnected since, silent). Fills heard and
listed are merged by ``tradeId``.

A retried placement never creates a second order: every placement carries ``expTime``
(when this client gives up waiting for the answer), and a retry of an order this account
already sent waits for that time to pass, then looks the order up and sends it again
only when OKX never got it; an order OKX calls a duplicate is looked up too. After a
restart (no memory of what was sent) the daemon's reconciliation asks by client order id.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterable, Mapping
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
    TemporaryExchangeError,
)
from arbotd.exchange import (
    RecentIds,
    SymbolRules,
    TrackedOrder,
    VenueAccount,
    decimal_text,
    merge_fills,
)
from arbotd_okx.config import OkxConfig
from arbotd_okx.orders import FINAL_STATES, final_status, outcome_reason
from arbotd_okx.private import OkxOrderStream
from arbotd_okx.rest import RATE_LIMITED, TEMPORARY_CODES, OkxError, OkxRest
from arbotd_okx.symbols import from_okx, to_okx

__all__ = ["OkxAccount", "okx_client_order_id", "parse_balances", "parse_instruments"]

log = logging.getLogger(__name__)

EXCHANGE = "okx"
INSTRUMENTS = "/api/v5/public/instruments"
BALANCE = "/api/v5/account/balance"
ORDER = "/api/v5/trade/order"
CANCEL = "/api/v5/trade/cancel-order"
FILLS = "/api/v5/trade/fills"

ORDER_NOT_FOUND = "51603"
DUPLICATE_CLIENT_ID = "51016"

_CLIENT_ID = re.compile(r"[A-Za-z0-9]{1,32}")


def okx_client_order_id(client_order_id: str) -> str:
    """``client_order_id`` as OKX accepts it (1 to 32 letters and digits): itself when
    it is one, otherwise ``x`` and 31 hex digits of its SHA-256, so the same id always
    maps to the same ``clOrdId``."""
    if _CLIENT_ID.fullmatch(client_order_id):
        return client_order_id
    return "x" + hashlib.sha256(client_order_id.encode()).hexdigest()[:31]


def _decimal(value: Any) -> Decimal:
    """OKX's number strings, where "" means none (0)."""
    return Decimal(value) if value not in ("", None) else Decimal(0)


def parse_instruments(data: Iterable[Any]) -> dict[str, SymbolRules]:
    """The ``data`` of ``/api/v5/public/instruments?instType=SPOT`` -> rules per neutral
    symbol. An entry that cannot be read is left out (and logged)."""
    rules: dict[str, SymbolRules] = {}
    skipped = 0
    for inst in data:
        try:
            if inst.get("instType", "SPOT") != "SPOT":
                continue
            symbol = from_okx(inst["instId"])
            state = str(inst.get("state", ""))
            max_limit = inst.get("maxLmtSz")
            rules[symbol] = SymbolRules(
                symbol,
                tick_size=Decimal(inst["tickSz"]),
                step_size=Decimal(inst["lotSz"]),
                min_qty=_decimal(inst.get("minSz")),
                max_qty=Decimal(max_limit) if max_limit else None,
                min_notional=Decimal(0),
                trading=state == "live",
                status=state,
            )
        except (AttributeError, KeyError, TypeError, InvalidOperation):
            skipped += 1
    if skipped:
        log.warning("okx: %d instruments could not be read and are left out", skipped)
    return rules


def parse_balances(data: list[Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """The ``data`` of ``/api/v5/account/balance`` -> asset -> (free, locked): OKX's
    ``availBal`` and ``frozenBal``."""
    if not data:
        return {}
    return {
        d["ccy"]: (_decimal(d.get("availBal")), _decimal(d.get("frozenBal")))
        for d in data[0]["details"]
    }


class OkxAccount(VenueAccount[OkxConfig, OkxRest]):
    """An OKX spot account: an :class:`arbotd.ExchangeAccount`.

    Created whether or not its keys are set (they are read once, here); it talks to OKX
    only once used. Two accounts built from equal settings compare equal.
    """

    name = EXCHANGE
    stream_title = "the orders channel"
    keys_read_at_start = True

    def __init__(
        self,
        settings: OkxConfig,
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
        # clOrdId -> expTime (ms, exchange clock) of the orders this account sent.
        self._sent: RecentIds[int] = RecentIds()
        super().__init__(settings, clock=clock, transport=transport, stream_wait=stream_wait,
                         stream_options=stream_options)

    def make_order_stream(self, url: str, **options: Any) -> OkxOrderStream:
        # What the orders channel tells is kept by clOrdId.
        return OkxOrderStream(
            self.orders, url, credentials=self.credentials, timestamp_ms=self.timestamp_ms,
            key_names=self.settings.credential_variables(), **options)

    def make_rest(self) -> OkxRest:
        key, secret, passphrase = self.credentials()
        return OkxRest(
            key, secret, passphrase,
            self.settings.resolved_rest_url(),
            demo=self.settings.testnet,
            timeout=self.timeout,
            budget_fraction=self.settings.request_budget_fraction,
            clock=self.clock,
            transport=self._transport,
        )

    async def load_rules(self) -> None:
        data = await self.rest.request("GET", INSTRUMENTS, {"instType": "SPOT"})
        rules = parse_instruments(data)
        if not rules:
            raise TemporaryExchangeError(EXCHANGE, f"{INSTRUMENTS} listed no spot instrument")
        self._rules = rules

    def rules(self, symbol: str) -> SymbolRules | None:
        return self._rules.get(symbol.upper())

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        data = await self.rest.request("GET", BALANCE, private=True)
        try:
            return parse_balances(data)
        except (KeyError, TypeError, IndexError, InvalidOperation) as err:
            raise TemporaryExchangeError(EXCHANGE, f"malformed {BALANCE} answer") from err

    # --- orders ------------------------------------------------------------------------------

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        refused = self.refused_by_rules(order)
        if refused is not None:
            return refused
        inst_id = to_okx(order.symbol)
        cl_ord_id = okx_client_order_id(order.client_order_id)
        earlier = self._sent.get(cl_ord_id)
        if earlier is not None:
            # Sent before and its answer lost: the exchange may hold it. Once the earlier
            # request's expTime has passed it can no longer be executed, so look it up
            # then, and send it again only when the exchange never got it.
            wait_ms = earlier - self.rest.timestamp_ms()
            if wait_ms > 0:
                await trio.sleep(wait_ms / 1000)
            detail = await self._detail(inst_id, cl_ord_id)
            if detail is not None:
                return await self._settle(order, inst_id, cl_ord_id, detail)
        deadline = self.rest.timestamp_ms() + int(self.timeout * 1000)
        self._sent.remember(cl_ord_id, deadline)
        session = self.orders.session_if_up()
        try:
            data = await self.rest.request(
                "POST", ORDER, body=self._order_body(order, inst_id, cl_ord_id),
                private=True, headers={"expTime": str(deadline)}, per_order=True,
            )
        except TemporaryExchangeError:
            heard = await self.heard(order, session, cl_ord_id)  # the stream may know
            if heard is not None:
                return heard
            raise
        try:
            result = data[0]
            s_code = str(result.get("sCode", "0"))
            s_msg = str(result.get("sMsg", ""))
        except (IndexError, AttributeError) as err:
            raise TemporaryExchangeError(
                EXCHANGE, f"POST {ORDER}: malformed answer, outcome unknown") from err
        if s_code == DUPLICATE_CLIENT_ID:
            log.info("okx: order %s exists already; looking it up", order.client_order_id)
            return await self._settle(order, inst_id, cl_ord_id)
        if s_code in RATE_LIMITED:
            pause = self.rest.pause(ORDER)
            raise TemporaryExchangeError(
                EXCHANGE, f"order {order.client_order_id}: sCode {s_code}: {s_msg}",
                retry_after=pause)
        if s_code in TEMPORARY_CODES:
            raise TemporaryExchangeError(
                EXCHANGE, f"order {order.client_order_id}: sCode {s_code}: {s_msg}")
        if s_code != "0":
            reason = f"OKX refused the order: sCode {s_code}: {s_msg}"
            return attrs.evolve(order, status=OrderStatus.REJECTED, reason=reason), []
        heard = await self.heard(order, session, cl_ord_id)
        if heard is not None:
            return heard
        return await self._settle(order, inst_id, cl_ord_id)

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        inst_id = to_okx(order.symbol)
        cl_ord_id = okx_client_order_id(order.client_order_id)
        tracked = self.orders.complete(cl_ord_id)
        if tracked is not None:  # the orders channel told all of it
            return self.told(order, tracked)
        detail = await self._detail(inst_id, cl_ord_id)
        deadline = self._sent.get(cl_ord_id)
        if detail is None and deadline is not None:
            # A request this account sent (answered 5xx, say) may still be executed until
            # its expTime: only after that does "does not exist" mean "never placed".
            wait_ms = deadline - self.rest.timestamp_ms()
            if wait_ms > 0:
                await trio.sleep(wait_ms / 1000)
                detail = await self._detail(inst_id, cl_ord_id)
        if detail is None:
            raise PermanentExchangeError(
                EXCHANGE, f"order {order.client_order_id} is not known to OKX (never placed)")
        return await self._settle(order, inst_id, cl_ord_id, detail)

    async def cancel_order(self, order: Order) -> None:
        inst_id = to_okx(order.symbol)
        cl_ord_id = okx_client_order_id(order.client_order_id)
        try:
            data = await self.rest.request(
                "POST", CANCEL, body={"instId": inst_id, "clOrdId": cl_ord_id}, private=True,
                per_order=True,
            )
            s_code = str(data[0].get("sCode", "0")) if data else "0"
            s_msg = str(data[0].get("sMsg", "")) if data else ""
        except OkxError as err:
            s_code, s_msg = err.code, str(err)
        if s_code == "0":
            return
        # Refused: fine when the order is already final (or was never placed).
        detail = await self._detail(inst_id, cl_ord_id)
        if detail is None or detail.get("state") in FINAL_STATES:
            return
        raise PermanentExchangeError(
            EXCHANGE, f"cancelling order {order.client_order_id}: sCode {s_code}: {s_msg}")

    # --- helpers -------------------------------------------------------------------------------

    def told(self, order: Order, tracked: TrackedOrder) -> tuple[Order, list[Fill]]:
        assert tracked.status is not None and tracked.filled is not None
        final = attrs.evolve(
            order, status=tracked.status, filled_quantity=tracked.filled,
            exchange_order_id=tracked.exchange_order_id or order.exchange_order_id,
            reason=outcome_reason(tracked.status, tracked.filled, order.quantity))
        return final, merge_fills(tracked.fills_of(order, EXCHANGE))

    @staticmethod
    def _order_body(order: Order, inst_id: str, cl_ord_id: str) -> dict[str, str]:
        body = {
            "instId": inst_id,
            "tdMode": "cash",
            "clOrdId": cl_ord_id,
            "side": order.side.value,
            "sz": decimal_text(order.quantity),
        }
        if order.price > 0:
            body["ordType"] = "ioc"
            body["px"] = decimal_text(order.price)
        else:
            # Market buys are sized in quote currency unless told otherwise.
            body["ordType"] = "market"
            body["tgtCcy"] = "base_ccy"
        return body

    async def _detail(self, inst_id: str, cl_ord_id: str) -> dict[str, Any] | None:
        """The order's details, ``None`` when OKX does not know it."""
        try:
            data = await self.rest.request(
                "GET", ORDER, {"instId": inst_id, "clOrdId": cl_ord_id}, private=True)
        except OkxError as err:
            if err.code == ORDER_NOT_FOUND:
                return None
            raise
        if not data or not isinstance(data[0], dict):
            return None
        return data[0]

    async def _settle(
        self, order: Order, inst_id: str, cl_ord_id: str, detail: dict[str, Any] | None = None
    ) -> tuple[Order, list[Fill]]:
        """Wait (boundedly) until the order is final, then return it with its fills."""
        queries = 0
        while detail is None or detail.get("state") not in FINAL_STATES:
            if queries >= self.poll_attempts:
                state = detail.get("state") if detail else "unknown"
                raise TemporaryExchangeError(
                    EXCHANGE,
                    f"order {order.client_order_id} is still {state} after {queries} "
                    "queries; its outcome is not known yet",
                )
            # Just placed, an IOC order is usually final at the first query (and can be
            # missing from the details for a moment).
            if detail is not None or queries:
                await trio.sleep(self.poll_interval)
            detail = await self._detail(inst_id, cl_ord_id)
            queries += 1
        try:
            return await self._result(order, inst_id, detail)
        except (KeyError, TypeError, InvalidOperation) as err:
            raise TemporaryExchangeError(
                EXCHANGE, f"order {order.client_order_id}: malformed order details"
            ) from err

    async def _result(
        self, order: Order, inst_id: str, detail: dict[str, Any]
    ) -> tuple[Order, list[Fill]]:
        filled = _decimal(detail.get("accFillSz"))
        ord_id = str(detail["ordId"])
        status = final_status(str(detail["state"]), filled, detail.get("ordType"))
        assert status is not None  # _settle waits for a final state
        final = attrs.evolve(order, status=status, filled_quantity=filled,
                             exchange_order_id=ord_id,
                             reason=outcome_reason(status, filled, order.quantity))
        fills = await self._fills(order, inst_id, ord_id, filled, detail) if filled else []
        return final, fills

    async def _fills(
        self, order: Order, inst_id: str, ord_id: str, filled: Decimal, detail: dict[str, Any]
    ) -> list[Fill]:
        """The order's executions. Should they not add up to what the order says it filled
        (the fills list can lag behind the order), the order's own totals stand in for
        them as one fill, so no quantity or fee is ever lost."""
        for attempt in range(3):
            if attempt:
                await trio.sleep(self.poll_interval)
            rows = await self.rest.request(
                "GET", FILLS, {"instType": "SPOT", "instId": inst_id, "ordId": ord_id},
                private=True)
            try:
                listed = {
                    str(r["tradeId"]): self._fill(order, r["fillPx"], r["fillSz"], r["fee"],
                                                  r["feeCcy"], r["ts"])
                    for r in rows if str(r.get("ordId")) == ord_id
                }
            except (KeyError, TypeError, AttributeError, InvalidOperation, ValueError):
                listed = {}
            # Fills the orders channel heard and the list does not show yet complete it.
            tracked = self.orders.get(okx_client_order_id(order.client_order_id))
            fills = merge_fills(listed, tracked.fills_of(order, EXCHANGE) if tracked else {})
            if sum((f.quantity for f in fills), Decimal(0)) == filled:
                return fills
        log.info("okx: fills of order %s incomplete; using its totals", order.client_order_id)
        return [self._fill(order, detail["avgPx"], detail["accFillSz"], detail["fee"],
                           detail["feeCcy"], detail.get("uTime") or detail["cTime"])]

    @staticmethod
    def _fill(order: Order, price: Any, quantity: Any, fee: Any, fee_asset: Any, ts: Any
              ) -> Fill:
        return Fill(
            order_id=order.client_order_id,
            trade_id=order.trade_id,
            exchange=EXCHANGE,
            symbol=order.symbol,
            side=order.side,
            price=Decimal(price),
            quantity=Decimal(quantity),
            # OKX writes a charge as a negative fee; a Fill's fee is what was charged.
            fee=-_decimal(fee),
            fee_asset=str(fee_asset),
            timestamp=int(ts) / 1000.0,
        )
