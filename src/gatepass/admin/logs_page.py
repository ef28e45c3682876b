"""`/logs`: the request-log viewer for admins (filters, totals, search, detail, live tail)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass import manage
from gatepass.admin import views
from gatepass.admin.pages import AdminPages
from gatepass.store import admin_queries
from gatepass.store.admin_queries import LogFilter
from gatepass.web import page

if TYPE_CHECKING:
    from gatepass.runtime import Gateway

PAGE_SIZE = 100
SEARCH_LIMIT = 1000  # matching requests considered by a content search
FILTERS = (
    "since", "until", "provider", "model", "user", "key", "status",
    "min_latency_ms", "max_latency_ms", "min_tokens", "q",
)  # fmt: skip


# Without a window the page opens on the last day: its totals add up every row they match,
# and over all time that is the whole table (~0.2 s per million rows on SQLite).
DEFAULT_SINCE = "24h"


class FilterError(Exception):
    pass


def windowed(params: dict[str, str]) -> dict[str, str]:
    """The filters as the page applies them: the last day unless a time window is given."""
    if params.get("since") or params.get("until"):
        return params
    return {**params, "since": DEFAULT_SINCE}


def _number(value: str | None, kind: type[int] | type[float], name: str) -> Any:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError as exc:
        raise FilterError(f"{name} must be a number") from exc


class LogsPage:
    def __init__(self, gateway: Gateway, pages: AdminPages) -> None:
        self.gateway = gateway
        self.pages = pages

    def routes(self) -> list[Route]:
        return [
            Route("/logs", self.index, methods=["GET"]),
            Route("/logs/tail", self.tail, methods=["GET"]),
            Route("/logs/{log_id:int}", self.detail, methods=["GET"]),
        ]

    async def _filter(self, params: dict[str, str]) -> LogFilter | None:
        """The filter from the query string; None when a content search matched nothing."""
        since, until = params.get("since"), params.get("until")
        try:
            request_ids = None
            if params.get("q", "").strip():
                async with self.gateway.sessions() as session:
                    request_ids = await admin_queries.search_request_ids(
                        session, text_query=params["q"], limit=SEARCH_LIMIT
                    )
                if not request_ids:
                    return None
            return LogFilter(
                since=manage.parse_instant(since) if since else None,
                until=manage.parse_instant(until) if until else None,
                provider=params.get("provider") or None,
                model=params.get("model") or None,
                user=params.get("user") or None,
                key=params.get("key") or None,
                status=_number(params.get("status"), int, "status"),
                min_latency_ms=_number(params.get("min_latency_ms"), float, "min latency"),
                max_latency_ms=_number(params.get("max_latency_ms"), float, "max latency"),
                min_tokens=_number(params.get("min_tokens"), int, "min tokens"),
                after_id=_number(params.get("after_id"), int, "after_id"),
                request_ids=request_ids,
            )
        except manage.ManageError as exc:
            raise FilterError(str(exc)) from exc

    async def index(self, request: Request) -> Response:
        found = await self.pages.principal(request)
        if isinstance(found, Response):
            return found
        params = windowed({k: v for k, v in request.query_params.items() if k in FILTERS and v})
        error = None
        rows: list[dict[str, Any]] = []
        totals = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        try:
            chosen = await self._filter(params)
        except FilterError as exc:
            error, chosen = str(exc), None
        if chosen is not None:
            async with self.gateway.sessions() as session:
                found_rows = await admin_queries.search_request_logs(
                    session, chosen, limit=PAGE_SIZE
                )
                totals = await admin_queries.request_log_totals(session, chosen)
            rows = [views.request_log(r) for r in found_rows]
        return page(
            "admin/logs.html",
            {
                "admin": found.actor,
                "csrf_token": found.csrf_token,
                "rows": rows,
                "totals": totals,
                "filters": params,
                "error": error,
                "capture": self.gateway.settings.logs.capture,
                "newest": rows[0]["id"] if rows else 0,
            },
            status=400 if error else 200,
        )

    async def tail(self, request: Request) -> Response:
        """New rows since `after_id` that match the filters (the page polls this)."""
        found = await self.pages.principal(request, redirect=False)
        if isinstance(found, Response):
            return found
        params = windowed(
            {k: v for k, v in request.query_params.items() if k in (*FILTERS, "after_id") and v}
        )
        try:
            chosen = await self._filter(params)
        except FilterError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        rows: list[dict[str, Any]] = []
        if chosen is not None:
            async with self.gateway.sessions() as session:
                found_rows = await admin_queries.search_request_logs(
                    session, chosen, limit=PAGE_SIZE
                )
            rows = [views.request_log(r) for r in found_rows]
        return JSONResponse({"data": rows}, headers={"cache-control": "no-store"})

    async def detail(self, request: Request) -> Response:
        found = await self.pages.principal(request)
        if isinstance(found, Response):
            return found
        async with self.gateway.sessions() as session:
            row = await admin_queries.get_request_log(
                session, log_id=int(request.path_params["log_id"])
            )
            body = (
                None
                if row is None
                else await admin_queries.get_request_body(session, request_id=row.request_id)
            )
        if row is None:
            return self.pages.error(404, "Not found", "There is no such request log entry.")
        return page(
            "admin/log_detail.html",
            {
                "admin": found.actor,
                "csrf_token": found.csrf_token,
                "row": views.request_log(row),
                "body": body,
            },
        )
