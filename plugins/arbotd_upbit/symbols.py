"""Exchange-neutral symbols (``BTCUSDT``) as Upbit's KRW markets (``KRW-BTC``, quote
first), the rate market (``KRW-USDT``, delivered as ``USDTKRW``), and the subscription
request that carries them (bitget-upbit-protocols.md 2.1).

Upbit prices ``BTCUSDT``'s base in KRW: the engine converts those prices into USDT at the
KRW-USDT rate (:mod:`arbotd.fx`), so only symbols quoted in the rate's currency (USDT)
can be watched here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import orjson

from arbotd import split_symbol

__all__ = [
    "RATE_MARKET",
    "RATE_QUOTED",
    "RATE_SYMBOL",
    "chunk",
    "subscribe_request",
    "to_upbit",
]

QUOTE_CURRENCY = "KRW"
# KRW per USDT, the market the engine converts Upbit's prices with.
RATE_MARKET = "KRW-USDT"
RATE_SYMBOL = "USDTKRW"
# The currency the converted symbols are quoted in.
RATE_QUOTED = "USDT"


def to_upbit(symbol: str) -> str:
    """``"BTCUSDT"`` -> ``"KRW-BTC"``; ``"USDTKRW"`` -> ``"KRW-USDT"``. Raises
    ``ValueError`` for a symbol that Upbit's KRW markets cannot stand for (quoted in
    anything but USDT, or unknown)."""
    symbol = symbol.upper()
    if symbol == RATE_SYMBOL:
        return RATE_MARKET
    base, quote = split_symbol(symbol)
    if quote != RATE_QUOTED:
        raise ValueError(f"{symbol}: Upbit's KRW markets convert only symbols quoted in "
                         f"{RATE_QUOTED} (at {RATE_MARKET})")
    return f"{QUOTE_CURRENCY}-{base}"


def chunk(items: Sequence[str], size: int) -> list[list[str]]:
    """``items`` (duplicates removed, order kept) in groups of at most ``size``."""
    unique = list(dict.fromkeys(items))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def subscribe_request(markets: Sequence[str], levels: int, rate_levels: int = 1) -> str:
    """The one request of a connection: the ``orderbook`` type of every market with
    ``levels`` levels (``KRW-BTC.5``), the rate market with ``rate_levels``."""
    codes = [f"{m}.{rate_levels if m == RATE_MARKET else levels}" for m in markets]
    return orjson.dumps([
        {"ticket": f"arbotd-{uuid.uuid4()}"},
        {"type": "orderbook", "codes": codes},
        {"format": "DEFAULT"},
    ]).decode()
