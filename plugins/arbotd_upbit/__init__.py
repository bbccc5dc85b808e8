"""arbotd_upbit: Upbit (Korea), KRW markets: order books over the public WebSocket (the
``orderbook`` type, 1 to 30 levels) with the KRW-USDT rate market the engine converts
them with, and the trading account of ``live`` mode (JWT-signed REST, the ``myOrder``
private stream).

Wire facts are cited from bitget-upbit-protocols.md sections 2 and 3 in each module; the
wire format (:mod:`~arbotd_upbit.stream`, :mod:`~arbotd_upbit.private`), the signing
(:mod:`~arbotd_upbit.signing`) and the error names (:mod:`~arbotd_upbit.errors`) are
kept apart from the shapes shared with the other venues.
"""

from arbotd_upbit.account import UpbitAccount
from arbotd_upbit.config import UpbitConfig
from arbotd_upbit.errors import UpbitError
from arbotd_upbit.rest import UpbitRest
from arbotd_upbit.signing import query_hash, token
from arbotd_upbit.stream import UpbitFeed, parse_orderbook
from arbotd_upbit.symbols import to_upbit
from arbotd_upbit.ticks import KrwRules, krw_tick

__all__ = [
    "KrwRules",
    "UpbitAccount",
    "UpbitConfig",
    "UpbitError",
    "UpbitFeed",
    "UpbitRest",
    "krw_tick",
    "parse_orderbook",
    "query_hash",
    "to_upbit",
    "token",
]
