"""Exchange-neutral symbols in Bitget's form and the subscription requests that carry
them (bitget-upbit-protocols.md 1.1).

Bitget names spot instruments as arbotd does (``BTCUSDT``, ``instType`` ``SPOT``). One
subscribe message is at most 4096 bytes, and a connection may send at most 10 messages
a second, ``ping`` included.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

__all__ = [
    "INST_TYPE",
    "MAX_REQUEST_BYTES",
    "channel_arg",
    "chunk",
    "from_bitget",
    "subscribe_requests",
    "to_bitget",
]

INST_TYPE = "SPOT"
MAX_REQUEST_BYTES = 4096


def to_bitget(symbol: str) -> str:
    """``"btcusdt"`` -> ``"BTCUSDT"``."""
    return symbol.upper()


def from_bitget(inst_id: str) -> str:
    """Bitget's ``instId``/``symbol`` -> the neutral symbol (the same, upper case)."""
    return inst_id.upper()


def chunk(items: Sequence[str], size: int) -> list[list[str]]:
    """``items`` (duplicates removed, order kept) in groups of at most ``size``."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    unique = list(dict.fromkeys(items))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def channel_arg(channel: str, inst_id: str) -> dict[str, str]:
    """One subscription argument."""
    return {"instType": INST_TYPE, "channel": channel, "instId": inst_id}


def subscribe_requests(inst_ids: Sequence[str], channel: str, op: str = "subscribe",
                       max_bytes: int = MAX_REQUEST_BYTES) -> list[str]:
    """The ``op`` messages for ``channel`` of every instrument, each at most
    ``max_bytes`` once serialised."""
    requests: list[str] = []
    args: list[dict[str, str]] = []

    def message(items: list[dict[str, str]]) -> str:
        return orjson.dumps({"op": op, "args": items}).decode()

    for inst_id in dict.fromkeys(inst_ids):
        arg = channel_arg(channel, inst_id)
        if args and len(message([*args, arg])) > max_bytes:
            requests.append(message(args))
            args = []
        args.append(arg)
    if args:
        requests.append(message(args))
    return requests
