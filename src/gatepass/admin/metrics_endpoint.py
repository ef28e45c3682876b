"""`GET /metrics`: Prometheus text; needs `Authorization: Bearer <metrics.token>` when set."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from gatepass.runtime import Gateway

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def routes(gateway: Gateway) -> list[Route]:
    async def metrics(request: Request) -> Response:
        token = gateway.settings.metrics.token
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            expected = token.get_secret_value().encode()
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected):
                return PlainTextResponse(
                    "metrics token required\n",
                    status_code=401,
                    headers={"www-authenticate": 'Bearer realm="metrics"'},
                )
        body = gateway.metrics.render(
            {
                "gatepass_requests_in_progress": (
                    "Proxied requests (streams included) open now.",
                    lambda: float(gateway.open_requests),
                ),
                "gatepass_log_rows_dropped_total": (
                    "Request-log rows dropped because the queue was full.",
                    lambda: float(gateway.log_writer.dropped),
                ),
                "gatepass_ready": (
                    "1 when the gateway accepts traffic.",
                    lambda: float(gateway.ready),
                ),
            }
        )
        return Response(body, media_type=CONTENT_TYPE, headers={"cache-control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]
