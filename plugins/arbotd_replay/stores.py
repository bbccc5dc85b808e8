"""The two storage backends this plugin puts in place of the configured one.

A backtest must never write into the operator's database: its runtime gets a
:class:`ResultStore`, which keeps signals and trades in memory for the report. The
recorder (``arbotd record``) gets a :class:`RecordingStore`, which writes every quote the
engine sees to a recorded quote file and nothing else. Both implement
:class:`arbotd.Storage`, so the core runs them the way it runs any storage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from arbotd import Balance, Quote, Signal, StoredState, Trade
from arbotd_replay.formats import open_writer
from arbotd_replay.quotefile import TimeOrderedWriter

__all__ = ["RecordingStore", "ResultStore"]

log = logging.getLogger("arbotd_replay")


class ResultStore:
    """A backtest's signals and trades (the latest state of each), and its paper funding.

    Opening always starts afresh (signal and trade ids from 1, no account to restore):
    a backtest is independent of anything stored before. ``observe_quote`` is not called
    (the session detaches it from the engine: it would cost a call per quote for
    nothing).
    """

    def __init__(self) -> None:
        self.signals: list[Signal] = []
        self.trades: dict[int, Trade] = {}
        self.funding: list[tuple[str, str, Decimal, float]] = []

    async def open(self) -> StoredState:
        return StoredState()

    async def close(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    def observe_quote(self, quote: Quote) -> None:
        pass

    def record_signal(self, signal: Signal) -> None:
        self.signals.append(signal)

    def record_trade(self, trade: Trade) -> None:
        self.trades[trade.id] = trade

    def record_funding(self, exchange: str, asset: str, amount: Decimal, timestamp: float
                       ) -> None:
        self.funding.append((exchange, asset, amount, timestamp))

    def record_equity(self, timestamp: float, equity_usd: float, balances: Sequence[Balance]
                      ) -> None:
        # The report's equity curve is built from the trades (see metrics), at exact
        # minutes of replayed time, not from the core's snapshots.
        pass

    def backlog(self) -> int:
        return 0


class RecordingStore:
    """Writes every quote to ``path`` in ``format`` (``csv``: see
    :class:`~arbotd_replay.quotefile.QuoteFileWriter`; ``parquet``:
    :class:`~arbotd_replay.parquetfile.ParquetQuoteWriter`); keeps nothing else. The file
    is created at :meth:`open` and complete (gzip trailer written, Parquet file renamed
    into place) once :meth:`close` returns, which the core does on every way the
    recorder stops.

    The file always has the ``bids`` and ``asks`` columns: which feeds give book levels
    is known only once their quotes arrive, and a recording is market that cannot be had
    again, so none of it is left out (a quote of the best level only leaves them
    empty)."""

    def __init__(self, path: Path, format: str = "csv") -> None:
        self.path = path
        self.format = format
        self.writer: TimeOrderedWriter | None = None

    @property
    def written(self) -> int:
        return self.writer.written if self.writer is not None else 0

    @property
    def late(self) -> int:
        """Quotes left out for coming too far out of time order (see
        :class:`~arbotd_replay.quotefile.TimeOrderedWriter`)."""
        return self.writer.late if self.writer is not None else 0

    async def open(self) -> StoredState:
        self.writer = open_writer(self.path, self.format, levels=True)
        log.info("recording every quote to %s (%s)", self.path, self.format)
        return StoredState()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            log.info("recorded %d quotes to %s", self.writer.written, self.path)
            if self.writer.late:
                # The writer warns as it goes, but only now and then: the total.
                log.warning("recorder: %d quotes came more than %.1f s out of time order "
                            "and were left out of %s", self.writer.late,
                            self.writer.reorder_seconds, self.path)

    async def flush(self) -> None:
        if self.writer is not None:
            self.writer.sync()

    def observe_quote(self, quote: Quote) -> None:
        if self.writer is not None:
            self.writer.write(quote)

    def record_signal(self, signal: Signal) -> None:
        pass

    def record_trade(self, trade: Trade) -> None:
        pass

    def record_funding(self, exchange: str, asset: str, amount: Decimal, timestamp: float
                       ) -> None:
        pass

    def record_equity(self, timestamp: float, equity_usd: float, balances: Sequence[Balance]
                      ) -> None:
        pass

    def backlog(self) -> int:
        return 0
