"""arbotd_okx: OKX v5 spot: order books over the public WebSocket (``bbo-tbt`` for the best
level, ``books5``/``books`` for more), and the trading account of ``live`` mode (signed
REST: rules, balances, IOC and market orders).

Wire facts are cited from exchange-protocols.md section 3 in each module.
"""

from arbotd_okx.account import OkxAccount, okx_client_order_id
from arbotd_okx.config import OkxConfig
from arbotd_okx.rest import OkxError, OkxRest, iso_timestamp, sign
from arbotd_okx.stream import OkxFeed, parse_bbo
from arbotd_okx.symbols import from_okx, to_okx

__all__ = [
    "OkxAccount",
    "OkxConfig",
    "OkxError",
    "OkxFeed",
    "OkxRest",
    "from_okx",
    "iso_timestamp",
    "okx_client_order_id",
    "parse_bbo",
    "sign",
    "to_okx",
]
