"""Live market and account data: ``/prices/current``, ``/orderbook``,
``/spreads/current``, ``/balances``.

``/orderbook`` gives the levels of the engine's latest quote of one symbol on one
exchange, best first, as ``[price, size]`` pairs: the top levels of the feed's book, or
the best level alone from a venue that sends only that. ``symbol`` and ``exchange`` are
required; ``depth`` (1 to :data:`MAX_BOOK_DEPTH`) keeps that many levels a side. A symbol
whose book is unusable (its venue's feed down or reconnecting, the book resynchronising
after a gap or a failed checksum, or nothing received yet) answers 503
``EXCHANGE_NOT_AVAILABLE``: the engine holds no book of it to trade on or to show.

Spreads, for every symbol and ordered pair of exchanges (buy on A, sell on B) whose
feeds are usable: ``spread = bid_B - ask_A``; ``spread_percent`` is that as a percent of
``ask_A``. ``profit_after_fees`` is the profit in the quote currency for the quantity a
trade of ``[arbitrage] trade_amount_usd`` buys (capped by the sizes displayed at both
prices), computed as a signal's is: after both venues' taker fees, the
``slippage_tolerance`` allowance and the venues' premium baselines; ``profit_percent`` is
it as a percent of the money spent. Only spreads that pay after all that are listed (so,
between venues with premium baselines, the raw ``spread`` may be negative).
``min_profit`` filters on ``profit_percent`` (percent, its unit: ``0.2`` = 0.2 %). Sorted
by ``profit_percent``, best first. Money to the quote currency's precision
(:mod:`arbotd.figures`).
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, Response, request

from arbotd import split_symbol
from arbotd.figures import money
from arbotd_api.context import float_param, int_param, kind, state
from arbotd_api.errors import ApiError, json_response

__all__ = ["MAX_BOOK_DEPTH", "blueprint", "compute_spreads"]

blueprint = Blueprint("market", __name__)

_DEFAULT_TRADE_AMOUNT = 100.0
MAX_BOOK_DEPTH = 1000
"""The most levels a side ``/orderbook`` answers with (books hold 20 by default)."""


def _engine() -> Any:
    engine = state().runtime.engine
    assert engine is not None
    return engine


def _symbol_filter(*, required: bool = False) -> str | None:
    symbol = request.args.get("symbol")
    if not symbol:
        if required:
            raise _missing("symbol")
        return None
    control = state().runtime.control
    valid = list(control.symbols) if control is not None else []
    if symbol not in valid:
        raise ApiError("INVALID_SYMBOL", f"Symbol {symbol!r} is not supported",
                       {"valid_symbols": valid, "provided_symbol": symbol})
    return symbol


def _exchange_filter(*, required: bool = False) -> str | None:
    exchange = request.args.get("exchange")
    if not exchange:
        if required:
            raise _missing("exchange")
        return None
    venues = sorted(_engine().market.fees)
    if exchange not in venues:
        raise ApiError("EXCHANGE_NOT_AVAILABLE", f"Exchange {exchange!r} is not enabled",
                       {"available_exchanges": venues, "provided_exchange": exchange})
    return exchange


@blueprint.get("/prices/current")
@kind("read")
async def current_prices() -> Response:
    symbol, exchange = _symbol_filter(), _exchange_filter()
    body = state().prices.answer(_engine(), symbol, exchange)
    return Response(body, status=200, content_type="application/json")


@blueprint.get("/orderbook")
@kind("read")
async def order_book() -> Response:
    symbol = _symbol_filter(required=True)
    exchange = _exchange_filter(required=True)
    depth = int_param("depth", MAX_BOOK_DEPTH, 1, MAX_BOOK_DEPTH)
    assert symbol is not None and exchange is not None
    engine = _engine()
    quote = engine.book.get(symbol, {}).get(exchange)
    if quote is None or not engine.is_usable(exchange):
        raise ApiError(
            "EXCHANGE_NOT_AVAILABLE",
            f"No usable order book of {symbol} on {exchange}: its feed is down or "
            "reconnecting, the book is resynchronising, or nothing has arrived yet",
            {"exchange": exchange, "symbol": symbol},
        )
    return json_response({
        "symbol": symbol,
        "exchange": exchange,
        "timestamp": quote.received_ts,
        "exchange_timestamp": quote.exchange_ts,
        "bids": quote.bid_levels[:depth],
        "asks": quote.ask_levels[:depth],
    })


def _missing(field: str) -> ApiError:
    return ApiError("VALIDATION_ERROR", f"{field} is required", {"field": field})


def compute_spreads(book: dict[str, dict[str, Any]], fees: dict[str, float],
                    usable: dict[str, bool], trade_amount: float, *,
                    slippage: float = 0.0, premium: dict[str, float] | None = None
                    ) -> list[dict[str, Any]]:
    premium = premium or {}
    spreads: list[dict[str, Any]] = []
    for symbol, quotes in book.items():
        try:
            _, currency = split_symbol(symbol)
        except ValueError:
            currency = ""
        venues = [v for v in quotes if usable.get(v, False)]
        for buy in venues:
            for sell in venues:
                if buy == sell:
                    continue
                ask, bid = quotes[buy].ask, quotes[sell].bid
                spread = bid - ask
                # Against premium baselines books cross in their own way (a venue at a
                # usual 3 % premium that falls to 1 % is a place to buy): the net decides.
                if ask <= 0 or (spread <= 0 and not premium.get(buy) and
                                not premium.get(sell)):
                    continue
                qty = min(trade_amount / ask, quotes[buy].ask_size, quotes[sell].bid_size)
                cost = ask * qty
                # The opportunity rule of the strategy, per unit (README, "How it trades").
                net = ((bid / (1 + premium.get(sell, 0.0) / 100)
                        - ask / (1 + premium.get(buy, 0.0) / 100))
                       - ask * fees.get(buy, 0.0) - bid * fees.get(sell, 0.0)
                       - slippage * ask)
                profit = net * qty
                if profit <= 0 or cost <= 0:
                    continue
                spreads.append({
                    "symbol": symbol,
                    "buy_exchange": buy,
                    "sell_exchange": sell,
                    "buy_price": ask,
                    "sell_price": bid,
                    "spread": money(spread, currency),
                    "spread_percent": round(spread / ask * 100, 6),
                    "profit_after_fees": money(profit, currency),
                    "profit_percent": round(profit / cost * 100, 6),
                })
    spreads.sort(key=lambda s: s["profit_percent"], reverse=True)
    return spreads


@blueprint.get("/spreads/current")
@kind("read")
async def current_spreads() -> Response:
    symbol = _symbol_filter()
    min_profit = float_param("min_profit")
    engine = _engine()
    arbitrage = state().runtime.config.get("arbitrage")
    amount = getattr(arbitrage, "trade_amount_usd", _DEFAULT_TRADE_AMOUNT)
    book = engine.book if symbol is None else {symbol: engine.book.get(symbol, {})}
    spreads = compute_spreads(book, engine.market.fees, engine.market.usable, amount,
                              slippage=getattr(arbitrage, "slippage_tolerance", 0.0),
                              premium=engine.market.premium)
    if min_profit is not None:
        spreads = [s for s in spreads if s["profit_percent"] >= min_profit]
    return json_response({"timestamp": time.time(), "spreads": spreads})


@blueprint.get("/balances")
@kind("read")
async def balances() -> Response:
    runtime = state().runtime
    out: dict[str, dict[str, dict[str, float]]] = {}
    for balance in runtime.ledger.balances():
        out.setdefault(balance.exchange, {})[balance.asset] = {
            "free": money(balance.free, balance.asset),
            "locked": money(balance.locked, balance.asset),
            "total": money(balance.total, balance.asset),
        }
    total = runtime.ledger.value_usd(_engine().price_usd)
    return json_response({"timestamp": time.time(), "balances": out,
                          "total_value_usd": money(total)})
