"""``[arbitrage]``: what counts as an opportunity and how big a trade is."""

from __future__ import annotations

from typing import Literal

import attrs

from arbotd import setting, split_symbol

TrendFilterMode = Literal["uptrend_buy_low", "downtrend_sell_high", "both", "disabled"]


# At most this many symbols: each is a subscription on every exchange.
MAX_SYMBOLS = 1000
# Amounts (quote currency) are finite and at most a billion: a larger one is a typo.
MAX_AMOUNT = 1e9


def _symbols_ok(symbols: list[str]) -> str | None:
    if not symbols:
        return "expected at least one symbol"
    if len(symbols) > MAX_SYMBOLS:
        return f"expected at most {MAX_SYMBOLS} symbols, got {len(symbols)}"
    bad = [s for s in symbols if not (s.isascii() and s.isalnum()) or s.upper() != s]
    if bad:
        return f"symbols are written like BTCUSDT (upper case, no separator), got {bad[0]!r}"
    for symbol in symbols:
        try:
            split_symbol(symbol)
        except ValueError:
            return f"{symbol!r} does not end in a quote currency arbotd knows (USDT, USDC ...)"
    if len(set(symbols)) != len(symbols):
        return "lists a symbol twice"
    return None


@attrs.frozen
class ArbitrageConfig:
    """Fractions are fractions (0.005 = 0.5 %); amounts are in the quote currency (USD for
    USDT pairs). Every key is a trading parameter the API may change."""

    symbols: list[str] = setting(
        factory=lambda: ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"],
        check=_symbols_ok,
        api=True,
    )
    min_profit_threshold: float = setting(0.002, ge=0, le=1, api=True)
    # How far inventory moves a route's threshold, as a fraction of min_profit_threshold
    # at full drift: a trade that brings an asset back toward its [inventory] targets
    # may pay that much less, one that takes it further away must pay that much more,
    # linear in between. 0 (default) turns it off; at most 1, so no threshold falls
    # below 0 (a trade's profit always covers its fees).
    inventory_skew: float = setting(0.0, ge=0, le=1, api=True)
    trade_amount_usd: float = setting(100.0, gt=0, le=MAX_AMOUNT, api=True)
    max_position_size: float = setting(1000.0, gt=0, le=MAX_AMOUNT, api=True)
    slippage_tolerance: float = setting(0.0005, ge=0, le=0.1, api=True)
    max_spread_threshold: float = setting(1.0, gt=0, le=1, api=True)
    max_spread_age_seconds: float = setting(5.0, gt=0, le=3600, api=True)
    cooldown_seconds: float = setting(60.0, ge=0, le=86400, api=True)
    max_trades_per_hour: int = setting(50, ge=1, le=100000, api=True)
    use_trend_filter: bool = setting(False, api=True)
    trend_filter_mode: TrendFilterMode = setting("both", api=True)
    moving_average_periods: int = setting(30, ge=2, le=3600, api=True)
    trend_confirmation_threshold: float = setting(0.001, ge=0, le=1, api=True)
