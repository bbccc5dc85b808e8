"""arbotd_replay: recording quotes, and backtests that replay them.

A backtest feeds recorded quotes, in time order across exchanges and symbols, to the same
engine, strategies, risk checks and paper executor as simulation mode, on a virtual clock
that follows the quotes' times (:mod:`arbotd_replay.session`): quote age, cool-downs,
fill delays, trend windows and daily limits behave as they did when the quotes were
received, and the same data and configuration give the same trades every run.

Recorded quote files
--------------------

One quote (best bid and ask of a symbol on an exchange) per row, as CSV, compressed with
gzip (``.csv.gz``; plain ``.csv`` is read too: gzip is recognised by its first bytes).
The first line is exactly this header::

    local_ts,exchange_ts,exchange,symbol,bid,ask,bid_size,ask_size

or, in a file whose quotes carry the top levels of their book (``Quote.bids`` and
``Quote.asks``), this one::

    local_ts,exchange_ts,exchange,symbol,bid,ask,bid_size,ask_size,bids,asks

========== ============================================================================
column     meaning
========== ============================================================================
local_ts   when the quote was received (``Quote.received_ts``), epoch seconds (UTC) as
           decimal text, e.g. ``1750000000.05``; rows are in ``local_ts`` order
exchange_ts the exchange's own time of the quote (``Quote.exchange_ts``), epoch seconds
exchange   the exchange's name in the configuration (``binance``, ``sim_alpha``)
symbol     the exchange-neutral symbol (``BTCUSDT``)
bid, ask   best bid and best ask price, ``0 < bid <= ask``
bid_size,  the quantity shown at those prices, in the base currency, ``>= 0``
ask_size
bids, asks the book's levels, best first, as ``price:size`` pairs separated by ``;``
           (``99.9:1.5;99.8:4.0``): the first is the row's best level, then prices go
           strictly away from it (bids fall, asks rise), sizes ``>= 0``; empty for a
           quote of the best level only
========== ============================================================================

Numbers are written as Python's ``repr`` of the float, which reads back as exactly the
same value. In pandas::

    import pandas as pd
    quotes = pd.read_csv("quotes.csv.gz")  # compression inferred from the name

A file written with pandas must keep that header and order (``df.to_csv(path,
index=False)``). ``arbotd record --out FILE`` writes such a file, always with the level
columns; a daemon with ``[storage] record_quotes = true`` keeps the best levels in its
database (table ``raw_quotes``), which the API's backtests read.

Recordings can also be Parquet (a ``.parquet`` file, or a directory of them): the same
fields, typed and columnar, described in :mod:`arbotd_replay.parquetfile` with how to
load them in pandas and polars; ``arbotd convert`` goes between the two formats and
``arbotd export`` writes the storage's recorded quotes as Parquet a folder a day
(:mod:`arbotd_replay.formats`). A backtest reads either, told by their content.

Bad data is never used silently: every bad row is reported as ``FILE:LINE: what was
wrong`` and skipped and counted by kind (``unsorted``, ``crossed``,
``non_positive_price``, ``negative_size``, ``unparseable``, ``truncated``,
``duplicate``, ``bad_levels``), or stops the backtest with ``--strict``; a wrong header
rejects the whole file.
"""

from arbotd_replay.backtest import BacktestOptions, BacktestResult, run_backtest
from arbotd_replay.config import BacktestConfig
from arbotd_replay.quotefile import (
    COLUMNS,
    DEPTH_COLUMNS,
    BadDataError,
    DataProblems,
    QuoteFileReader,
    QuoteFileWriter,
)
from arbotd_replay.runner import RUNNER_KEY, BacktestRunner

__all__ = [
    "COLUMNS",
    "DEPTH_COLUMNS",
    "RUNNER_KEY",
    "BacktestConfig",
    "BacktestOptions",
    "BacktestResult",
    "BacktestRunner",
    "BadDataError",
    "DataProblems",
    "QuoteFileReader",
    "QuoteFileWriter",
    "run_backtest",
]
