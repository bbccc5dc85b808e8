"""The REST endpoints, one module per area of the API reference. Each module has a
blueprint; later areas (history, trades, signals, performance, batch, analytics) add a
module and a line here. The dashboard's page and files are served beside the API, outside
its prefix, and ``/metrics`` too, where Prometheus looks."""

from __future__ import annotations

from quart import Quart

from arbotd_api.routes import (
    audit,
    backtests,
    dashboard,
    history,
    inventory,
    market,
    metrics,
    system,
    trading,
)

__all__ = ["register_routes"]

PREFIX = "/api/v1"


def register_routes(app: Quart) -> None:
    for module in (system, trading, market, history, backtests, audit, inventory):
        app.register_blueprint(module.blueprint, url_prefix=PREFIX)
    app.register_blueprint(dashboard.blueprint)
    app.register_blueprint(metrics.blueprint)
