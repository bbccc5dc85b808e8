"""The OpenAPI 3.0.3 description of the REST API, served at ``GET /api/v1/openapi.json``.

Parameters are described as the handlers check them (types, formats, enums, bounds),
request bodies with their required fields (``additionalProperties: false`` where the
handler refuses unknown fields), responses with exactly the fields the handlers send
(``additionalProperties: false`` on every fixed-shape object), and every error status a
route can answer with the API's error object. Every response carries the
``X-RateLimit-*`` headers.

The document describes the API, not this server's configuration: symbols and exchanges
are plain strings (an unknown one answers ``INVALID_SYMBOL`` or ``EXCHANGE_NOT_AVAILABLE``),
so the document is built once and needs no credentials to read. The keys ``PUT
/trading/config`` accepts are the allow-list the installed plugins declare
(``setting(api=True)``), with their types and bounds: the same declaration the handler
enforces.
``tests/api/test_openapi.py`` fails when a route is missing from it.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any

import attrs

from arbotd import (
    ArbotError,
    TradeState,
    __version__,
    api_editable_settings,
    collect_config_schema,
    make_plugin_manager,
    setting_rule,
)
from arbotd_api.context import MAX_ID, MAX_JSON_DEPTH, MAX_TIME
from arbotd_api.errors import STATUS
from arbotd_api.routes.audit import TIME_PATTERN
from arbotd_api.routes.history import (
    INTERVALS,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_OPERATIONS,
    OPERATION_TYPES,
    PERIODS,
    QUERY_TYPES,
    SYMBOL_METRICS,
)
from arbotd_api.routes.market import MAX_BOOK_DEPTH

__all__ = ["openapi_document"]

Schema = dict[str, Any]

MODES = ["simulation", "live", "backtest"]
SCOPES = ["read", "trading"]
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    400: "The request is malformed (VALIDATION_ERROR, details.field names the culprit; "
         f"JSON bodies nested deeper than {MAX_JSON_DEPTH} levels are malformed), names an "
         "unknown symbol (INVALID_SYMBOL) or cannot be met (INSUFFICIENT_BALANCE)",
    401: "Missing, wrong, expired or revoked credentials (UNAUTHORIZED)",
    403: "The trading scope is needed (FORBIDDEN) or trading is disabled (TRADING_DISABLED)",
    404: "No such resource (NOT_FOUND)",
    405: "Method not allowed on this endpoint (METHOD_NOT_ALLOWED)",
    408: "The request body did not arrive within [api] body_timeout_seconds "
         "(REQUEST_TIMEOUT); the connection closes after this answer",
    429: "Rate limit exceeded, or too many failed logins for the user name "
         "(RATE_LIMIT_EXCEEDED); Retry-After says when to come back",
    500: "Internal server error (INTERNAL_ERROR); no details leave the server",
    503: "An exchange (EXCHANGE_NOT_AVAILABLE), or the storage with history, users or the "
         "audit trail (STORAGE_NOT_AVAILABLE: a login, or a JWT's user, cannot be checked) "
         "is not available",
}


# --- schema helpers -----------------------------------------------------------------------


def obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = (),
        extra: bool | Schema = False, **more: Any) -> Schema:
    """An object with ``properties``, all required but ``optional``; ``extra`` is its
    ``additionalProperties`` (``False``: exactly these fields)."""
    schema: Schema = {"type": "object", "properties": properties}
    required = [name for name in properties if name not in optional]
    if required:
        schema["required"] = required
    schema["additionalProperties"] = extra
    return schema | more


def mapping(values: Schema, description: str) -> Schema:
    """An object keyed by names (symbols, exchanges, assets) with the same kind of value."""
    return {"type": "object", "additionalProperties": values, "description": description}


def array(items: Schema, **more: Any) -> Schema:
    return {"type": "array", "items": items, **more}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def number(**more: Any) -> Schema:
    return {"type": "number", **more}


def integer(**more: Any) -> Schema:
    return {"type": "integer", **more}


def string(**more: Any) -> Schema:
    return {"type": "string", **more}


def enum(values: Any) -> Schema:
    return {"type": "string", "enum": list(values)}


BOOLEAN: Schema = {"type": "boolean"}
NUMBER = number()
INTEGER = integer()
STRING = string()
DATE = string(format="date", pattern=r"^\d{4}-\d{2}-\d{2}$")
DATE_TIME = string(format="date-time")
EPOCH = number(minimum=0, description="Unix time in seconds")
EPOCH_IN_RANGE = number(minimum=0, maximum=MAX_TIME,
                        description="Unix time in seconds, before the year 10000")
TRUE: Schema = {"type": "boolean", "enum": [True]}


# --- operations ---------------------------------------------------------------------------


def query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    """A query parameter. The handlers take an empty optional one as not given."""
    parameter = {"name": name, "in": "query", "required": required, "schema": schema,
                 "description": description}
    return parameter if required else parameter | {"allowEmptyValue": True}


SYMBOL = query("symbol", STRING, "Only this symbol (INVALID_SYMBOL if it is not configured)")
EXCHANGE = query("exchange", STRING, "Only this exchange "
                 "(EXCHANGE_NOT_AVAILABLE if it is not enabled)")
LIMIT = query("limit", integer(minimum=1, maximum=MAX_LIMIT, default=100),
              "Maximum number of results")
OFFSET = query("offset", integer(minimum=0, maximum=MAX_OFFSET, default=0),
               "Pagination offset")
START_DATE = query("start_date", DATE, "First UTC day (YYYY-MM-DD), included")
END_DATE = query("end_date", DATE, "Last UTC day (YYYY-MM-DD), included")


def json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def response(description: str, schema: Schema, *, retry_after: bool = False) -> Schema:
    headers = {name: {"$ref": f"#/components/headers/{name}"}
               for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining",
                            "X-RateLimit-Reset", "X-RateLimit-Type")}
    if retry_after:
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    return {"description": description, "headers": headers, "content": json_content(schema)}


def operation(summary: str, tag: str, ok: Schema, *errors: int,
              public: bool = False, write: bool = False, parameters: list[Schema] | None = None,
              body: Schema | None = None, body_required: bool = True,
              ok_status: int = 200) -> Schema:
    """One operation. Every operation may answer 429 and 500; those needing credentials
    401 too, and write operations 403 (the trading scope); those taking a body 408 when
    it comes too slowly."""
    codes = set(errors) | {429, 500}
    if not public:
        codes.add(401)
    if write:
        codes.add(403)
    if parameters or body is not None:
        codes.add(400)
    if body is not None:
        codes.add(408)
    op: Schema = {"summary": summary, "tags": [tag], "operationId": _operation_id(summary),
                  "responses": {str(ok_status): response("Success", ok)}}
    for code in sorted(codes):
        op["responses"][str(code)] = {"$ref": f"#/components/responses/Error{code}"}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": json_content(body)}
    if public:
        op["security"] = []
    return op


def _operation_id(summary: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in summary).split()
    return words[0].lower() + "".join(w.capitalize() for w in words[1:])


# --- response shapes ----------------------------------------------------------------------


def _error_schema() -> Schema:
    return obj({"error": obj({
        "code": enum(STATUS),
        "message": STRING,
        "details": {"type": "object", "description": "What went wrong, by code"},
        "timestamp": DATE_TIME,
    })})


def _status() -> Schema:
    feed = obj({"connected": BOOLEAN, "last_update": nullable(EPOCH),
                "latency_ms": nullable(NUMBER)})
    premium = obj({
        "percent": NUMBER | {"description": "What the venue's prices are measured against "
                                            "now, percent"},
        "mode": enum(["fixed", "rolling"]),
        "samples": nullable(integer(minimum=0)),
        "window_seconds": nullable(NUMBER),
    })
    currency = obj({
        "currency": STRING, "rate_symbol": STRING, "rate_max_age_seconds": NUMBER,
        "rate": nullable(obj({"bid": NUMBER, "ask": NUMBER, "timestamp": EPOCH})),
        "quotes_without_rate": obj({"rate_missing": integer(minimum=0),
                                    "rate_stale": integer(minimum=0)}),
    })
    return obj({
        "status": enum(["running", "idle", "emergency_stopped", "stopping"]),
        "uptime": integer(minimum=0, description="Seconds since the daemon started"),
        "version": STRING,
        "mode": enum(MODES),
        "exchanges": mapping(feed, "By exchange"),
        "active_symbols": integer(minimum=0),
        "signals_last_hour": integer(minimum=0),
        "trades_today": integer(minimum=0),
        "premium_baselines": mapping(premium, "By exchange: venues with a premium "
                                     "baseline (an extra)"),
        "currencies": mapping(currency, "By exchange: venues quoted in another currency, "
                              "whose prices are converted (an extra)"),
    })


def _health() -> Schema:
    status = enum(["pass", "fail"])
    problem = obj({"field": STRING, "message": STRING})
    return obj({
        "healthy": BOOLEAN,
        "checks": obj({
            "database": obj({"status": status, "response_time_ms": number(minimum=0),
                             "message": STRING, "backlog": integer(minimum=0)},
                            optional=("message", "backlog")),
            "exchanges": obj({"status": status, "connected_count": integer(minimum=0),
                              "total_count": integer(minimum=0)}),
            "memory": obj({"status": status, "usage_percent": number(minimum=0, maximum=100)}),
            "disk": obj({"status": status, "free_space_gb": number(minimum=0),
                         "path": STRING}),
            "config": obj({"status": status, "message": STRING, "problems": array(problem)},
                          optional=("message", "problems")),
            "accounts": obj({"status": status, "ready_count": integer(minimum=0),
                             "total_count": integer(minimum=0),
                             "problems": mapping(STRING, "Why an account fails, by exchange")}),
        }, optional=("accounts",)),
    })


def _trading_config() -> Schema:
    """What GET answers: the reference's shape (a few keys of each table; the fields a
    section lacks are left out)."""
    arbitrage = {"min_profit_threshold": NUMBER, "max_position_size": NUMBER,
                 "trade_amount_usd": NUMBER, "use_trend_filter": BOOLEAN,
                 "trend_filter_mode": STRING}
    risk = {"max_drawdown_percent": NUMBER, "stop_loss_percent": NUMBER,
            "max_concurrent_trades": INTEGER}
    return obj({
        "arbitrage": obj(arbitrage, optional=tuple(arbitrage)),
        "risk_management": obj(risk, optional=tuple(risk)),
        "exchanges": mapping(obj({"enabled": BOOLEAN}), "By exchange"),
    })


def _installed_editable_settings() -> dict[str, attrs.Attribute]:
    """The keys the API may change on a daemon running every installed plugin."""
    try:
        pm = make_plugin_manager()
    except ArbotError:  # a broken plugin: the daemon would not start with it either
        pm = make_plugin_manager(entry_points=False)
    return api_editable_settings(collect_config_schema(pm))


def _setting_schema(field: attrs.Attribute) -> Schema:
    """A setting's value as the handler checks it: its type and declared bounds."""
    tp, rule = field.type, setting_rule(field)
    origin = typing.get_origin(tp)
    if tp is bool:
        return BOOLEAN
    if tp in (int, float):
        schema = integer() if tp is int else number()
        for bound, key, exclusive in ((rule.ge, "minimum", False), (rule.gt, "minimum", True),
                                      (rule.le, "maximum", False), (rule.lt, "maximum", True)):
            if bound is not None:
                schema[key] = bound
                if exclusive:
                    schema["exclusive" + key.capitalize()] = True
        return schema
    if tp is str:
        return STRING
    if origin is typing.Literal:
        return enum(typing.get_args(tp))
    if origin in (list, tuple):
        return array(_setting_schema(attrs.Attribute.evolve(field, type=typing.get_args(tp)[0])))
    if origin is dict:
        value = attrs.Attribute.evolve(field, type=typing.get_args(tp)[1])
        return mapping(_setting_schema(value), "By name")
    return {}


class _Keys(dict):
    """A table of the editable keys' tree (its other nodes are the values' schemas)."""


def _config_update() -> Schema:
    editable = _installed_editable_settings()
    tree = _Keys()
    for key, field in editable.items():
        *tables, name = key.split(".")
        node = tree
        for table in tables:
            node = node.setdefault(table, _Keys())
        node[name] = _setting_schema(field)

    def table(node: _Keys) -> Schema:
        properties = {k: table(v) if isinstance(v, _Keys) else v for k, v in node.items()}
        return obj(properties, optional=tuple(properties), minProperties=1)

    return table(tree) | {
        "description": "Partial tables of the keys the API may change (each section "
                       "declares its own): " + ", ".join(editable) + ". Any other key of "
                       "the configuration answers FORBIDDEN naming it, an unknown key or an "
                       "invalid value VALIDATION_ERROR naming the field; nothing is written "
                       "then."}


def _quote() -> Schema:
    return obj({"bid": NUMBER, "ask": NUMBER, "bid_size": NUMBER, "ask_size": NUMBER,
                "timestamp": EPOCH})


def _order_book() -> Schema:
    level = array(NUMBER, minItems=2, maxItems=2, description="[price, size]")
    return obj({
        "symbol": STRING, "exchange": STRING,
        "timestamp": EPOCH | {"description": "When the book's latest update arrived"},
        "exchange_timestamp": number(description="The exchange's time of that update "
                                                 "(Unix seconds)"),
        "bids": array(level, minItems=1, description="Best (highest) first"),
        "asks": array(level, minItems=1, description="Best (lowest) first"),
    }, description="The engine's latest book of the symbol on the exchange: the top "
                   "levels of the feed's book, or the best level alone from a venue "
                   "that sends only that. 503 EXCHANGE_NOT_AVAILABLE while it has no "
                   "usable book (feed down or reconnecting, book resynchronising)")


def _spread() -> Schema:
    return obj({
        "symbol": STRING, "buy_exchange": STRING, "sell_exchange": STRING,
        "buy_price": NUMBER, "sell_price": NUMBER, "spread": NUMBER,
        "spread_percent": NUMBER, "profit_after_fees": NUMBER, "profit_percent": NUMBER,
    })


def _balances() -> Schema:
    amounts = obj({"free": NUMBER, "locked": NUMBER, "total": NUMBER})
    return obj({
        "timestamp": EPOCH,
        "balances": mapping(mapping(amounts, "By asset"), "By exchange"),
        "total_value_usd": NUMBER,
    })


def _transfer() -> Schema:
    return obj({"id": integer(minimum=1), "asset": STRING, "from": STRING, "to": STRING,
                "amount": string(description="Exact decimal"),
                "network_fee": string(description="Exact decimal"), "timestamp": EPOCH,
                "actor": nullable(STRING)})


def _inventory() -> Schema:
    venue = obj({
        "exchange": STRING, "amount": NUMBER, "value": nullable(NUMBER),
        "target": number(minimum=0, maximum=1, description="Target share"),
        "share": number(minimum=0, maximum=1, description="Current share"),
        "drift": number(minimum=-1, maximum=1, description="share - target"),
    })
    asset = obj({"asset": STRING, "total": NUMBER, "price": nullable(NUMBER),
                 "value": nullable(NUMBER), "max_drift": number(minimum=0, maximum=1),
                 "exchanges": array(venue)})
    move = obj({"asset": STRING, "from": STRING, "to": STRING, "amount": NUMBER,
                "network_fee": NUMBER | {"description": "Estimated, in the asset"},
                "fee_value": nullable(NUMBER),
                "from_currency": nullable(STRING) | {
                    "description": "The source is quoted in this currency (KRW) and holds "
                                   "the asset as it: buy the asset with it there first"},
                "to_currency": nullable(STRING) | {
                    "description": "The destination is quoted in this currency and holds "
                                   "the asset as it: sell the asset for it there"}})
    return obj({
        "timestamp": EPOCH, "assets": array(asset),
        "plan": array(move) | {"description": "Transfers that restore the targets exactly"},
        "plan_fee_value": nullable(NUMBER),
        "lost_profit": NUMBER | {"description": "Profit of signals turned down for "
                                 "balance since the last recorded transfer"},
        "lost_since": nullable(EPOCH), "balance_rejections": integer(minimum=0),
        "inventory_skew": number(minimum=0, maximum=1),
        "warn_drift": number(minimum=0, maximum=1),
        "transfers": array(_transfer()),
    })


def _transfer_request() -> Schema:
    return obj({"asset": STRING, "from": STRING, "to": STRING,
                "amount": NUMBER | {"minimum": 0, "exclusiveMinimum": True},
                "network_fee": NUMBER | {"minimum": 0}},
               optional=("network_fee",))


TRADE_STATUS = enum(member.value for member in TradeState)
_LIMITS = ("the worst book level the quantity takes on that side: the IOC limit price of "
           "its order, before the slippage tolerance")
_TRADE_COMMON: dict[str, Schema] = {
    "symbol": STRING, "buy_exchange": STRING, "sell_exchange": STRING,
}


def _trade_summary() -> Schema:
    return obj({
        "id": integer(minimum=1), **_TRADE_COMMON,
        "quantity": NUMBER | {"description": "Filled (arbitraged) quantity"},
        "planned_quantity": NUMBER, "planned_profit": NUMBER,
        "actual_profit": nullable(NUMBER) | {"description": "Net, once the trade is final"},
        "fees_paid": nullable(NUMBER),
        "status": TRADE_STATUS, "started_at": DATE_TIME,
        "completed_at": nullable(DATE_TIME), **_NATIVE_PRICES,
    })


_NATIVE = ("on a venue quoted in another currency (KRW), where prices are converted into "
           "the symbol's quote currency; null on other venues")
_NATIVE_PRICES: dict[str, Schema] = {
    "buy_native_price": nullable(NUMBER) | {
        "description": f"The buy price in the buying venue's own currency, {_NATIVE}"},
    "sell_native_price": nullable(NUMBER) | {
        "description": f"The sell price in the selling venue's own currency, {_NATIVE}"},
    "buy_rate": nullable(NUMBER) | {
        "description": "Units of the buying venue's currency per unit of the quote "
                       f"currency the buy price was converted at (the rate market's bid), "
                       f"{_NATIVE}"},
    "sell_rate": nullable(NUMBER) | {
        "description": "Units of the selling venue's currency per unit of the quote "
                       f"currency the sell price was converted at (the rate market's "
                       f"ask), {_NATIVE}"},
}


def _trade_detail() -> Schema:
    fill = obj({"price": NUMBER, "quantity": NUMBER, "fee": NUMBER,
                "fee_asset": nullable(STRING), "fee_value": nullable(NUMBER),
                "native_price": nullable(NUMBER) | {
                    "description": f"What the venue charged, in native_asset, {_NATIVE}"},
                "native_asset": nullable(STRING),
                "timestamp": EPOCH, "time": DATE_TIME})
    leg = obj({
        "client_order_id": STRING, "exchange_order_id": nullable(STRING),
        "exchange": STRING, "side": enum(["buy", "sell"]),
        "purpose": enum(["entry", "hedge", "unwind"]), "price": NUMBER,
        "quantity": NUMBER, "status": STRING, "filled_quantity": NUMBER,
        "reason": nullable(STRING),
        "native_price": nullable(NUMBER) | {
            "description": f"The limit sent, in the venue's own currency (0 at market), "
                           f"{_NATIVE}"},
        "rate": nullable(NUMBER) | {
            "description": "Units of the venue's currency per unit of the quote currency "
                           "the order was priced and its fills converted at (the rate "
                           f"market's bid for a buy, its ask for a sell), {_NATIVE}"},
        "fills": array(fill),
    })
    return obj({
        "id": integer(minimum=1), "signal_id": nullable(INTEGER), **_TRADE_COMMON,
        "buy_order_id": nullable(STRING), "sell_order_id": nullable(STRING),
        "planned_buy_price": NUMBER | {"description": "The signal's volume-weighted buy "
                                                      "price"},
        "planned_sell_price": NUMBER | {"description": "The signal's volume-weighted sell "
                                                       "price"},
        "buy_limit": NUMBER | {"description": f"Highest ask: {_LIMITS}"},
        "sell_limit": NUMBER | {"description": f"Lowest bid: {_LIMITS}"},
        "actual_buy_price": nullable(NUMBER), "actual_sell_price": nullable(NUMBER),
        **_NATIVE_PRICES,
        "quantity": NUMBER | {"description": "Filled (arbitraged) quantity"},
        "planned_quantity": NUMBER, "planned_profit": NUMBER,
        "actual_profit": nullable(NUMBER) | {"description": "Net, once the trade is final"},
        "fees_paid": nullable(NUMBER),
        "slippage": nullable(NUMBER) | {"description": "Price slippage of both legs "
                                        "(positive: worse than planned)"},
        "status": TRADE_STATUS,
        "started_at": DATE_TIME, "completed_at": nullable(DATE_TIME),
        "execution_time_ms": nullable(integer(minimum=0)),
        "mode": enum(MODES), "reason": nullable(STRING), "legs": array(leg),
    })


def _trades() -> Schema:
    return obj({
        "trades": array(_trade_summary()),
        "total_count": integer(minimum=0),
        "pagination": obj({"limit": integer(minimum=1), "offset": integer(minimum=0),
                           "has_more": BOOLEAN}),
    })


def _signals() -> Schema:
    signal = obj({
        "id": integer(minimum=1), **_TRADE_COMMON,
        "buy_price": NUMBER | {"description": "Volume-weighted over the asks quantity takes"},
        "sell_price": NUMBER | {"description": "Volume-weighted over the bids quantity "
                                               "takes"},
        "profit": NUMBER | {"description": "Expected net profit of the whole quantity"},
        "profit_percent": NUMBER, "confidence": NUMBER, "executed": BOOLEAN,
        "reject_reason": nullable(STRING),
        "timestamp": EPOCH,
        "quantity": NUMBER,
        "buy_limit": NUMBER | {"description": f"Highest ask: {_LIMITS}"},
        "sell_limit": NUMBER | {"description": f"Lowest bid: {_LIMITS}"},
        "threshold": nullable(NUMBER) | {"description": "The profit threshold (a fraction) "
                                         "the signal was held to"},
        "threshold_reason": nullable(STRING) | {
            "description": "Why that threshold: min_profit_threshold, or the inventory "
                           "skew of its route"},
        **_NATIVE_PRICES,
    })
    return obj({"signals": array(signal), "total_count": integer(minimum=0)})


def _price_history() -> Schema:
    candle = obj({"timestamp": integer(), "open": NUMBER, "high": NUMBER, "low": NUMBER,
                  "close": NUMBER, "volume": NUMBER})
    return obj({"symbol": STRING, "exchange": nullable(STRING),
                "interval": enum(INTERVALS), "data": array(candle)})


def _performance() -> Schema:
    metrics = obj({
        "total_trades": integer(minimum=0), "successful_trades": integer(minimum=0),
        "win_rate": NUMBER, "total_profit": NUMBER, "total_fees": NUMBER,
        "net_profit": NUMBER, "avg_profit_per_trade": NUMBER, "max_profit": NUMBER,
        "max_loss": NUMBER, "avg_execution_time_seconds": NUMBER,
        "sharpe_ratio": nullable(NUMBER) | {"description": "Daily returns, sqrt(365); "
                                            "null below 7 daily returns (see notes)"},
        "sortino_ratio": nullable(NUMBER) | {"description": "As sharpe_ratio, over the "
                                             "downside deviation"},
        "max_drawdown_percent": NUMBER,
        "profit_factor": nullable(NUMBER) | {"description": "null when no trade lost "
                                             "(see notes)"},
    })
    day = obj({"date": DATE, "trades": integer(minimum=0), "profit": NUMBER,
               "win_rate": NUMBER})
    notes = mapping(STRING, "Why a figure of metrics is null, by its name")
    return obj({"period": enum([*PERIODS, "custom"]), "start_date": DATE, "end_date": DATE,
                "metrics": metrics, "notes": notes, "daily_breakdown": array(day)})


def _analytics_request() -> Schema:
    listed = {"minItems": 1}
    parameters = obj({
        "symbols": nullable(array(string(), **listed)),
        "start_date": nullable(DATE),
        "end_date": nullable(DATE),
        "metrics": nullable(array(enum(SYMBOL_METRICS), **listed)),
    }, optional=("symbols", "start_date", "end_date", "metrics"))
    return obj({"query_type": enum(QUERY_TYPES), "parameters": parameters},
               optional=("parameters",))


def _analytics_response() -> Schema:
    return obj({
        "query_type": enum(QUERY_TYPES),
        "results": mapping(mapping(NUMBER, "By metric"), "By symbol"),
        "execution_time_ms": integer(minimum=0),
    })


def _batch_request() -> Schema:
    identifier = integer(minimum=1, maximum=MAX_ID)
    execute = obj({"type": enum(OPERATION_TYPES[:1]), "signal_id": identifier,
                   "quantity": number(exclusiveMinimum=True, minimum=0)},
                  optional=("quantity",))
    cancel = obj({"type": enum(OPERATION_TYPES[1:]), "trade_id": identifier})
    return obj({"operations": array({"oneOf": [execute, cancel]}, minItems=1,
                                    maxItems=MAX_OPERATIONS)})


def _batch_response() -> Schema:
    shortfall = obj({"exchange": STRING, "asset": STRING, "required": NUMBER,
                     "available": NUMBER})
    result = obj({"operation": integer(minimum=1), "success": BOOLEAN,
                  "trade_id": integer(minimum=1), "error": STRING,
                  "code": enum(["INSUFFICIENT_BALANCE"]), "details": shortfall},
                 optional=("trade_id", "error", "code", "details"))
    return obj({"results": array(result)})


def _start_request() -> Schema:
    names = nullable(array(STRING))
    return {"type": "object", "properties": {
        "mode": enum(MODES), "symbols": names, "exchanges": names,
        "start_time": EPOCH_IN_RANGE | {"description": "backtest: first recorded quote "
                                                       "replayed"},
        "end_time": EPOCH_IN_RANGE | {"description": "backtest: replay quotes before "
                                                     "this time"},
        "balance": number(exclusiveMinimum=True, minimum=0,
                          description="backtest: starting quote-currency balance per "
                                      "exchange (default [backtest] balance)"),
    }, "description": "Every field is optional: mode defaults to [daemon] mode, symbols "
                      "and exchanges to all configured. mode backtest replays the quotes "
                      "the storage recorded from start_time to end_time (both required) "
                      "in a worker thread, leaving the daemon's trading alone; the answer "
                      "carries backtest_id for GET /backtests/{backtest_id}"}


def _backtest_group() -> Schema:
    return obj({"trades": integer(minimum=0), "winning_trades": integer(minimum=0),
                "win_rate": NUMBER, "net_profit": NUMBER, "total_fees": NUMBER})


def _backtest_metrics() -> Schema:
    count = integer(minimum=0)
    return obj({
        "start": DATE_TIME, "end": DATE_TIME, "duration_seconds": number(minimum=0),
        "quotes": count, "exchanges": mapping(NUMBER, "Taker fee used, by exchange"),
        "symbols": array(STRING), "signals": count, "signals_executed": count,
        "total_trades": count, "completed_trades": count, "unwound_trades": count,
        "failed_trades": count, "winning_trades": count, "losing_trades": count,
        "win_rate": NUMBER,
        "gross_profit": NUMBER | {"description": "Before fees"},
        "total_fees": NUMBER, "net_profit": NUMBER,
        "slippage": NUMBER | {"description": "Price slippage (positive: worse than "
                              "planned)"},
        "winning_total": NUMBER, "losing_total": NUMBER,
        "profit_factor": nullable(NUMBER) | {"description": "null when no trade lost "
                                             "(see notes)"},
        "sharpe_ratio": nullable(NUMBER) | {"description": "Daily returns, sqrt(365); null "
                                            "below 7 daily returns (see notes)"},
        "sortino_ratio": nullable(NUMBER),
        "max_drawdown_percent": NUMBER,
        "starting_equity": NUMBER, "final_equity": NUMBER, "return_percent": NUMBER,
        "notes": mapping(STRING, "Why a figure is null, by its name"),
        "by_symbol": mapping(_backtest_group(), "By symbol"),
        "by_route": mapping(_backtest_group(), "By route, \"SYMBOL buy->sell\""),
        "rejections": mapping(integer(minimum=0), "Opportunities turned down, by reason"),
        "bad_rows": mapping(integer(minimum=0), "Bad recorded quotes skipped, by kind"),
    })


def _backtest() -> Schema:
    names = nullable(array(STRING))
    return obj({
        "backtest_id": integer(minimum=1),
        "status": enum(["running", "completed", "failed"]),
        "progress_percent": number(minimum=0, maximum=100),
        "created_at": DATE_TIME,
        "finished_at": nullable(DATE_TIME),
        "request": obj({"start_time": EPOCH, "end_time": EPOCH, "symbols": names,
                        "exchanges": names, "balance": NUMBER}),
        "error": nullable(STRING),
        "metrics": nullable(_backtest_metrics()),
    })


def _backtest_detail() -> Schema:
    trade = obj({
        "trade_id": integer(minimum=1), "signal_id": integer(minimum=0), **_TRADE_COMMON,
        "state": TRADE_STATUS, "quantity": NUMBER, "planned_buy_price": NUMBER,
        "planned_sell_price": NUMBER, "planned_profit": NUMBER, "bought": NUMBER,
        "buy_price": nullable(NUMBER), "sold": NUMBER, "sell_price": nullable(NUMBER),
        "net_profit": NUMBER, "fees": NUMBER, "started_at": DATE_TIME,
        "completed_at": nullable(DATE_TIME), "reason": nullable(STRING),
    })
    detail = _backtest()
    detail["properties"] |= {
        "trades": array(trade),
        "pagination": obj({"limit": integer(minimum=1), "offset": integer(minimum=0),
                           "total_count": integer(minimum=0), "has_more": BOOLEAN}),
    }
    detail["required"] = [*detail["required"], "trades", "pagination"]
    return detail


def _audit() -> Schema:
    entry = obj({
        "id": integer(minimum=1),
        "timestamp": EPOCH,
        "recorded_at": DATE_TIME,
        "actor": string(description="A user name, an API key's key:<fingerprint>, "
                                    "anonymous, unauthenticated, signal, a local account"),
        "method": string(description="jwt, api_key, anonymous, password (a login), cli, "
                                     "signal; for refused credentials the kind presented"),
        "source": nullable(string(description="IP address, or local")),
        "action": string(description="Method and route, e.g. POST /api/v1/trading/start; "
                                     "user add; SIGHUP reload"),
        "outcome": string(description="success, an error code, ABORTED, applied, refused, "
                                      "failed, suppressed (a summary of refusals)"),
        "status": nullable(integer(minimum=100, maximum=599)),
        "details": {"type": "object", "description": "What was asked and what it did"},
    })
    return obj({
        "entries": array(entry),
        "total_count": integer(minimum=0),
        "pagination": obj({"limit": integer(minimum=1), "offset": integer(minimum=0),
                           "has_more": BOOLEAN}),
    })


# --- the document ---------------------------------------------------------------------------


def _paths() -> dict[str, dict[str, Schema]]:
    ok = obj({"success": TRUE, "message": STRING})
    started = obj({**ok["properties"], "mode": enum(MODES), "start_time": DATE_TIME,
                   "symbols_count": integer(minimum=0),
                   "exchanges_count": integer(minimum=0),
                   "backtest_id": integer(minimum=1, description="mode backtest only")},
                  optional=("backtest_id",))
    stopped = obj({**ok["properties"], "stop_time": DATE_TIME,
                   "trades_completed": integer(minimum=0),
                   "pending_trades": integer(minimum=0)})
    emergency = obj({**ok["properties"], "trades_cancelled": integer(minimum=0),
                     "positions_closed": integer(minimum=0), "timestamp": DATE_TIME})
    updated = obj({**ok["properties"], "updated_fields": array(STRING)})
    limits = obj({"limits": mapping(NUMBER, "Each limit and its current use"),
                  "status": enum(["normal", "warning", "critical"]),
                  "warnings": array(STRING)})
    token = obj({"access_token": STRING, "token_type": enum(["bearer"]),
                 "expires_in": integer(minimum=1), "scope": enum(SCOPES)})
    login = obj({"username": STRING, "password": STRING}, extra=True)
    log_in = operation("Log in for a JWT", "auth", token, 401, 503, public=True, body=login)
    # Also form-encoded, as the API reference's example posts it.
    log_in["requestBody"]["content"]["application/x-www-form-urlencoded"] = {
        "schema": login}
    health = operation("Health check", "system", _health(), public=True)
    health["responses"]["503"] = response("A check failed (same body)", _health())
    trade_id = {"name": "trade_id", "in": "path", "required": True,
                "schema": integer(minimum=1, maximum=MAX_ID)}
    times = [query("start_time", EPOCH_IN_RANGE, "From this time"),
             query("end_time", EPOCH_IN_RANGE, "Until this time")]
    return {
        "/api/v1/status": {"get": operation("System status", "system", _status())},
        "/api/v1/health": {"get": health},
        "/metrics": {"get": _metrics()},
        "/api/v1/openapi.json": {"get": operation(
            "OpenAPI document", "system", {"type": "object"}, public=True)},
        "/api/v1/auth/login": {"post": log_in},
        "/api/v1/trading/start": {"post": operation(
            "Start trading", "trading", started, 503, write=True, body=_start_request(),
            body_required=False)},
        "/api/v1/trading/stop": {"post": operation(
            "Stop trading", "trading", stopped, write=True)},
        "/api/v1/trading/config": {
            "get": operation("Trading configuration", "trading", _trading_config()),
            "put": _put_trading_config(updated),
        },
        "/api/v1/risk/emergency-stop": {"post": operation(
            "Emergency stop", "risk", emergency, write=True)},
        "/api/v1/risk/limits": {"get": operation("Risk limits", "risk", limits)},
        "/api/v1/prices/current": {"get": operation(
            "Current prices", "market",
            obj({"timestamp": EPOCH,
                 "prices": mapping(mapping(_quote(), "By exchange"), "By symbol")}),
            503, parameters=[SYMBOL, EXCHANGE])},
        "/api/v1/orderbook": {"get": operation(
            "Order book", "market", _order_book(), 503,
            parameters=[
                query("symbol", string(minLength=1), "Trading symbol (INVALID_SYMBOL if it "
                      "is not configured)", required=True),
                query("exchange", string(minLength=1), "Exchange (EXCHANGE_NOT_AVAILABLE if "
                      "it is not enabled)", required=True),
                query("depth", integer(minimum=1, maximum=MAX_BOOK_DEPTH),
                      "Levels a side, at most (default: every level the engine holds)"),
            ])},
        "/api/v1/spreads/current": {"get": operation(
            "Current spreads", "market", obj({"timestamp": EPOCH, "spreads": array(_spread())}),
            parameters=[SYMBOL, query("min_profit", NUMBER,
                                      "Minimum net profit as a fraction (0.002 = 0.2 %)")])},
        "/api/v1/balances": {"get": operation("Balances", "market", _balances())},
        "/api/v1/inventory": {"get": operation("Inventory", "market", _inventory())},
        "/api/v1/inventory/transfers": {"post": operation(
            "Record a transfer", "market",
            obj({"success": TRUE, "paper_balances_moved": BOOLEAN,
                 "transfer": _transfer()}),
            503, write=True, body=_transfer_request(), ok_status=201)},
        "/api/v1/trades": {"get": operation(
            "Trade history", "history", _trades(), 503,
            parameters=[START_DATE, END_DATE, SYMBOL,
                        query("status", TRADE_STATUS, "Only trades in this state"),
                        LIMIT, OFFSET])},
        "/api/v1/trades/{trade_id}": {"get": operation(
            "One trade", "history", _trade_detail(), 404, 503, parameters=[trade_id])},
        "/api/v1/signals": {"get": operation(
            "Signals", "history", _signals(), 503,
            parameters=[*times, SYMBOL, query("executed", BOOLEAN, "Executed or not"),
                        LIMIT, OFFSET])},
        "/api/v1/prices/history": {"get": operation(
            "Price history", "history", _price_history(), 503,
            parameters=[query("symbol", string(minLength=1), "Trading symbol", required=True),
                        EXCHANGE,
                        *(query(p["name"], EPOCH, p["description"], required=True)
                          for p in times),
                        query("interval", enum(INTERVALS) | {"default": "1m"},
                              "Candle interval")])},
        "/api/v1/performance": {"get": operation(
            "Performance", "history", _performance(), 503,
            parameters=[query("period", enum(PERIODS), "The calendar period containing "
                              "today (UTC): day, ISO week, month or year (default month); "
                              "not with start_date/end_date"),
                        START_DATE, END_DATE])},
        "/api/v1/analytics/query": {"post": operation(
            "Analytics query", "history", _analytics_response(), 503,
            body=_analytics_request())},
        "/api/v1/backtests": {"get": operation(
            "Backtests", "trading",
            obj({"backtests": array(_backtest()), "total_count": integer(minimum=0)}))},
        "/api/v1/backtests/{backtest_id}": {"get": operation(
            "One backtest", "trading", _backtest_detail(), 404,
            parameters=[{"name": "backtest_id", "in": "path", "required": True,
                         "schema": integer(minimum=1, maximum=MAX_ID)},
                        LIMIT, OFFSET])},
        "/api/v1/batch/trades": {"post": operation(
            "Batch trade operations", "trading", _batch_response(), write=True,
            body=_batch_request())},
        "/api/v1/audit": {"get": operation(
            "Audit trail", "audit", _audit(), 403, 503,
            parameters=[*(query(name, string(pattern=TIME_PATTERN),
                                f"{text} (epoch seconds or ISO 8601 with its zone, "
                                "2024-01-01T00:00:00Z), included")
                          for name, text in (("start_time", "From this time"),
                                             ("end_time", "Until this time"))),
                        query("actor", STRING, "Only entries of this actor"),
                        query("action", STRING, "Only this action, e.g. "
                              "POST /api/v1/trading/start"),
                        query("outcome", STRING, "Only this outcome, e.g. success, "
                              "UNAUTHORIZED"),
                        LIMIT, OFFSET])},
    }


def _metrics() -> Schema:
    """``GET /metrics``: Prometheus's text format, or OpenMetrics when asked for; the
    scrape token opens it besides the API's credentials."""
    op = operation("Prometheus metrics", "system", STRING)
    op["description"] = ("The daemon's figures in the Prometheus text format (OpenMetrics "
                         "when the Accept header asks for application/openmetrics-text). "
                         "Also open to the scrape token of [api] metrics_token_env.")
    text = {"schema": STRING}
    op["responses"]["200"]["content"] = {"text/plain": text,
                                         "application/openmetrics-text": text}
    op["security"] = [{"ApiKeyAuth": []}, {"BearerAuth": []}, {"ScrapeToken": []}]
    return op


def _put_trading_config(updated: Schema) -> Schema:
    op = operation("Update trading configuration", "trading", updated, write=True,
                   body=_config_update())
    op["responses"]["403"] = response(
        "The trading scope is needed, or the body names a key the API may not change "
        "(FORBIDDEN; details.field names it, details.editable lists the keys it may)",
        _ERROR_REF)
    return op


def _components() -> Schema:
    int_header = {"schema": integer(minimum=0), "required": True}
    headers = {
        "X-RateLimit-Limit": int_header | {"description": "Requests per minute of this type"},
        "X-RateLimit-Remaining": int_header | {"description": "Requests allowed right now"},
        "X-RateLimit-Reset": int_header | {"description": "Unix time the bucket is full"},
        "X-RateLimit-Type": {"schema": enum(["requests"]), "required": True},
        "Retry-After": {"schema": integer(minimum=1), "required": True,
                        "description": "Seconds until a request is allowed again"},
    }
    responses = {
        f"Error{code}": response(text, _ERROR_REF, retry_after=code == 429)
        for code, text in _DESCRIPTIONS.items()
    }
    responses["Error405"]["headers"]["Allow"] = {"schema": STRING, "required": True}
    return {
        "schemas": {"Error": _error_schema()},
        "responses": responses,
        "headers": headers,
        "securitySchemes": {
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "ScrapeToken": {"type": "http", "scheme": "bearer",
                            "description": "The scrape token of [api] metrics_token_env "
                                           "(GET /metrics only)"},
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The document; built on first use and shared (do not mutate it)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "arbotd API",
            "version": __version__,
            "description": "Cross-exchange arbitrage daemon. Read endpoints need the read or "
                           "trading scope, write endpoints and the audit trail the trading "
                           "scope; health, login and this document are public. Unknown "
                           "routes answer 404 and unsupported methods 405, both with the "
                           "error object.",
        },
        "security": [{"ApiKeyAuth": []}, {"BearerAuth": []}],
        "paths": _paths(),
        "components": _components(),
    }
