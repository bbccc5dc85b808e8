"""``GET /metrics``: the daemon in the Prometheus text format (:mod:`arbotd_api.metrics`).

At the root, where Prometheus looks by default, not under ``/api/v1``. When ``[api]
auth_required`` is on it needs credentials like every read (the read scope is enough), or
the scrape token named by ``[api] metrics_token_env``, which opens this route and no
other. Its rate limit is a bucket of its own per client (the read limits), so that a
dashboard's reads from the same address never crowd out a scrape. An ``Accept`` header
asking for OpenMetrics gets OpenMetrics; anything else the classic text format.
"""

from __future__ import annotations

from prometheus_client.exposition import choose_encoder
from quart import Blueprint, Response, request

from arbotd_api.context import kind, state

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
@kind("scrape")
async def get_metrics() -> Response:
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(state().metrics.registry), status=200, content_type=content_type)
