"""Exchange-neutral symbols (``BTCUSDT``) in OKX's form (``BTC-USDT``, its ``instId``),
and the subscription requests that carry them (exchange-protocols.md 3.1)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from arbotd import split_symbol

__all__ = [
    "BBO_CHANNEL",
    "MAX_ARGS_BYTES",
    "chunk",
    "from_okx",
    "subscribe_requests",
    "to_okx",
]

# Best bid/ask, a snapshot every 10 ms when it changes (exchange-protocols.md 3.1).
BBO_CHANNEL = "bbo-tbt"
# OKX accepts at most 64 KB of args in one subscribe request (exchange-protocols.md 3.1).
MAX_ARGS_BYTES = 64 * 1024


def to_okx(symbol: str) -> str:
    """``"BTCUSDT"`` -> ``"BTC-USDT"``. Raises ``ValueError`` when the quote currency of
    ``symbol`` is not known."""
    base, quote = split_symbol(symbol.upper())
    return f"{base}-{quote}"


def from_okx(inst_id: str) -> str:
    """``"BTC-USDT"`` -> ``"BTCUSDT"``."""
    return inst_id.replace("-", "")


def chunk(items: Sequence[str], size: int) -> list[list[str]]:
    """``items`` (duplicates removed, order kept) in groups of at most ``size``."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    unique = list(dict.fromkeys(items))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def subscribe_requests(
    inst_ids: Sequence[str], channel: str = BBO_CHANNEL, max_args_bytes: int = MAX_ARGS_BYTES
) -> list[str]:
    """The subscribe requests for ``channel`` of every instrument, each request's args
    under ``max_args_bytes`` once serialised."""
    requests: list[str] = []
    args: list[dict[str, str]] = []
    size = 2  # the brackets of the args list
    for inst_id in dict.fromkeys(inst_ids):
        arg = {"channel": channel, "instId": inst_id}
        arg_size = len(orjson.dumps(arg)) + 1  # and its comma
        if args and size + arg_size > max_args_bytes:
            requests.append(orjson.dumps({"op": "subscribe", "args": args}).decode())
            args, size = [], 2
        args.append(arg)
        size += arg_size
    if args:
        requests.append(orjson.dumps({"op": "subscribe", "args": args}).decode())
    return requests
