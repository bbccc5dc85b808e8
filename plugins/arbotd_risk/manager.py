"""The risk checks: one object answering for every limit of ``[risk_management]``.

- ``max_concurrent_trades``: trades in flight at once;
- ``max_position_size``: notional of one trade, in the quote currency;
- ``max_drawdown_percent``: equity (all balances at current mid prices) below its peak;
- ``daily_loss_limit``: realised loss since 00:00 UTC;
- ``balance_threshold_percent``: an exchange whose holdings are worth less than this
  share of its starting holdings (both valued at current prices, so that price moves of
  held coins do not count) takes no new trades;
- ``stop_loss_percent``: how far the price of a missing leg may have moved against the
  plan for the trade runner still to complete it; beyond that it unwinds the filled leg.
"""

from __future__ import annotations

from arbotd import DurableStorage, LimitUse, Runtime, Signal, StoredState
from arbotd_risk.config import RiskConfig

__all__ = ["PEAK_KEY", "RiskManager"]

PEAK_KEY = "risk.equity_peak"
"""The saved-state key of the equity peak (USD) behind ``max_drawdown_percent``."""


class RiskManager:
    name = "risk"

    def __init__(self, config: RiskConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self.equity_peak = 0.0
        # The last figures measured with every held asset priced: while a venue's market
        # data is down, the limits keep them instead of mistaking the unpriced holdings
        # for a loss.
        self._drawdown = 0.0
        self._balance_percent: dict[str, float] = {}

    def restore(self, state: StoredState) -> None:
        """Take back the equity peak of a previous run, so that a restart does not reset
        the drawdown."""
        peak = state.saved.get(PEAK_KEY)
        if isinstance(peak, int | float) and peak > self.equity_peak:
            self.equity_peak = float(peak)

    @property
    def stop_loss_fraction(self) -> float:
        return self.config.stop_loss_percent / 100

    def check(self, signal: Signal) -> str | None:
        cfg = self.config
        control = self.runtime.control
        if control is not None and len(control.active) >= cfg.max_concurrent_trades:
            return "max_concurrent_trades"
        if signal.quantity * signal.buy_price > cfg.max_position_size:
            return "max_position_size"
        if self.daily_loss() >= cfg.daily_loss_limit:
            return "daily_loss_limit"
        if self.drawdown_percent() >= cfg.max_drawdown_percent:
            return "max_drawdown"
        threshold = cfg.balance_threshold_percent
        if threshold > 0:
            for exchange in (signal.buy_exchange, signal.sell_exchange):
                if self.balance_percent(exchange) < threshold:
                    return "balance_threshold"
        return None

    def limits(self) -> list[LimitUse]:
        cfg = self.config
        control = self.runtime.control
        active = len(control.active) if control is not None else 0
        largest = max(
            (float(t.quantity * t.planned_buy_price) for t in control.active.values()),
            default=0.0,
        ) if control is not None else 0.0
        return [
            LimitUse("max_drawdown_percent", cfg.max_drawdown_percent, self.drawdown_percent()),
            LimitUse("max_concurrent_trades", cfg.max_concurrent_trades, active),
            LimitUse("daily_loss_limit", cfg.daily_loss_limit, self.daily_loss()),
            LimitUse("max_position_size", cfg.max_position_size, largest),
        ]

    # --- measurements -------------------------------------------------------------------

    def daily_loss(self) -> float:
        control = self.runtime.control
        if control is None:
            return 0.0
        control.stats.roll(control.clock())
        return max(0.0, -float(control.stats.realized_today))

    def equity(self) -> float | None:
        """Every balance at current prices, in USD; ``None`` while a held asset has no
        valid price."""
        engine = self.runtime.engine
        if engine is None:
            return None
        return self.runtime.ledger.full_value_usd(engine.price_usd)

    def drawdown_percent(self) -> float:
        equity = self.equity()
        if equity is None:
            return self._drawdown
        if equity > self.equity_peak:
            self.equity_peak = equity
            storage = getattr(self.runtime, "storage", None)
            if isinstance(storage, DurableStorage):
                storage.record_state(PEAK_KEY, equity)
        if self.equity_peak <= 0:
            return 0.0
        self._drawdown = max(0.0, (self.equity_peak - equity) / self.equity_peak * 100)
        return self._drawdown

    def balance_percent(self, exchange: str) -> float:
        """Holdings on ``exchange`` as a percent of its starting holdings, both at current
        prices (100 when it started with nothing of value; the last figure while a held
        asset has no valid price)."""
        engine = self.runtime.engine
        if engine is None:
            return 100.0
        ledger = self.runtime.ledger
        start = ledger.full_value_usd(engine.price_usd, exchange, starting=True)
        now = ledger.full_value_usd(engine.price_usd, exchange)
        if start is None or now is None:
            return self._balance_percent.get(exchange, 100.0)
        percent = now / start * 100 if start > 0 else 100.0
        self._balance_percent[exchange] = percent
        return percent
