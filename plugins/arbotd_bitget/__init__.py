"""arbotd_bitget: Bitget spot, API v2 (classic account): order books over the public
WebSocket (``books1`` for the best level, ``books15``/``books`` for more), and the
trading account of ``live`` mode (signed REST: rules, balances, IOC and market orders;
the private ``orders`` channel for fills).

Wire facts are cited from bitget-upbit-protocols.md section 1 in each module. Bitget's
own wire format, signing and error codes live in :mod:`~arbotd_bitget.symbols`,
:mod:`~arbotd_bitget.books`, :mod:`~arbotd_bitget.signing` and
:mod:`~arbotd_bitget.codes`; the rest is the exchange kit's (:mod:`arbotd.exchange`):
its config, account, feed and private stream bases.
"""

from arbotd_bitget.account import BitgetAccount
from arbotd_bitget.books import checksum_of
from arbotd_bitget.config import BitgetConfig
from arbotd_bitget.orders import bitget_client_oid
from arbotd_bitget.rest import BitgetError, BitgetRest
from arbotd_bitget.signing import login_request, sign
from arbotd_bitget.stream import BitgetFeed, parse_bbo
from arbotd_bitget.symbols import from_bitget, to_bitget

__all__ = [
    "BitgetAccount",
    "BitgetConfig",
    "BitgetError",
    "BitgetFeed",
    "BitgetRest",
    "bitget_client_oid",
    "checksum_of",
    "from_bitget",
    "login_request",
    "parse_bbo",
    "sign",
    "to_bitget",
]
