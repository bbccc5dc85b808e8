"""``[backtest]``: what ``arbotd backtest`` replays by default, and the backtest's paper
accounts.

Every key can be overridden on the command line (``--data``, ``--start``, ``--end``,
``--balance``, ``--report``); the API's backtests take theirs from the request and the
rest from here. How paper orders fill (delay, partial fills, rejects) comes from
``[simulation.paper]``, so that a backtest fills exactly as simulation mode does.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import attrs

from arbotd import setting

__all__ = ["BacktestConfig", "parse_time"]


def parse_time(value: str | float | int, what: str = "time") -> float:
    """Epoch seconds from a number or an ISO 8601 text (``2025-06-15T12:00:00Z``, or a
    date ``2025-06-15`` meaning its 00:00 UTC; a time without offset is UTC). Raises
    ``ValueError`` naming ``what`` and the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected epoch seconds or an ISO 8601 time, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"{what}: expected epoch seconds or an ISO 8601 time such as "
                    f"2025-06-15T12:00:00Z, got {value!r}"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            number = moment.timestamp()
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what}: expected a time after 1970, got {value!r}")
    return number


def _check_time(value: Any) -> str | None:
    if value == "":
        return None
    try:
        parse_time(value)
    except ValueError as err:
        return str(err).split(": ", 1)[1]
    return None


def _check_files(files: Any) -> str | None:
    if any(not name for name in files):
        return "expected file names, got an empty one"
    return None


@attrs.frozen
class BacktestConfig:
    """``[backtest]``. Amounts are in the quote currency of the symbols (USD for USDT
    pairs)."""

    # Recorded quote files replayed when the command line names none: .csv.gz or .csv,
    # .parquet, or directories of .parquet files, merged by time.
    data: list[str] = setting(factory=list, check=_check_files)
    # Replay only quotes from start (included) to end (excluded): ISO 8601 UTC times
    # ("2025-06-15T12:00:00Z") or epoch seconds; "" = from the first / to the last quote.
    start: str = setting("", check=_check_time)
    end: str = setting("", check=_check_time)
    # Starting balance of the quote currency (USDT) on every exchange of the data.
    balance: float = setting(10_000.0, gt=0)
    # Every coin traded starts with this much of it on every exchange, valued at its
    # first mid price in the data.
    coin_balance_usd: float = setting(10_000.0, ge=0)
    # Seed of the paper fills' random choices (partial fills, rejects). The same seed as
    # [simulation] seed fills a replay of a simulated recording exactly as the run did.
    seed: int = setting(42, ge=0)
    # Taker fee of an exchange in the data that is neither provided by an enabled plugin
    # nor configured in an [exchanges.<name>] table with a taker_fee.
    default_taker_fee: float = setting(0.001, ge=0, lt=0.1)
    # Directory for the report (trades.csv, signals.csv, metrics.json, equity.png) when
    # --report is not given; "" = print the summary only.
    report_dir: str = setting("")
    # Stop with an error at the first bad row instead of skipping it (--strict).
    strict: bool = setting(False)

    def validate_config(self) -> list[tuple[str, str]]:
        try:
            if self.start and self.end and parse_time(self.start) >= parse_time(self.end):
                return [("end", f"must be after start ({self.start!r})")]
        except ValueError:  # already reported on the key itself
            pass
        return []
