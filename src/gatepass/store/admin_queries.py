"""Queries for the audit trail (read and append only), admin tokens and admin sessions."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, literal_column
from sqlalchemy import text as sql_text
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.admin import AdminSession, AdminToken
from gatepass.store.bodies import REQUEST_BODY_TSVECTOR, RequestBody
from gatepass.store.events import AuditEvent
from gatepass.store.models import ERROR_STATUS, RequestLog

# The audit trail has no update or delete query on purpose: it is append-only.


async def list_audit(
    session: AsyncSession,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
    oldest_first: bool = False,
) -> Sequence[AuditEvent]:
    """Events matching every given filter; `action` ending in `.` or `*` matches a prefix."""
    query = select(AuditEvent)
    if action:
        if action.endswith(("*", ".")):
            query = query.where(col(AuditEvent.action).startswith(action.rstrip("*")))
        else:
            query = query.where(AuditEvent.action == action)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if target:
        query = query.where(AuditEvent.target == target)
    if since is not None:
        query = query.where(col(AuditEvent.created_at) >= since)
    if until is not None:
        query = query.where(col(AuditEvent.created_at) < until)
    if after_id is not None:
        query = query.where(col(AuditEvent.id) > after_id)
    order = col(AuditEvent.id) if oldest_first else col(AuditEvent.id).desc()
    return (await session.exec(query.order_by(order).offset(offset).limit(limit))).all()


# admin tokens


async def get_admin_token_by_hash(session: AsyncSession, *, token_hash: str) -> AdminToken | None:
    query = select(AdminToken).where(AdminToken.token_hash == token_hash)
    return (await session.exec(query)).first()


async def get_admin_token(session: AsyncSession, *, name: str) -> AdminToken | None:
    return (await session.exec(select(AdminToken).where(AdminToken.name == name))).first()


async def list_admin_tokens(session: AsyncSession) -> Sequence[AdminToken]:
    return (await session.exec(select(AdminToken).order_by(col(AdminToken.name)))).all()


# admin sessions


async def get_admin_session(
    session: AsyncSession, *, session_hash: str, now: datetime
) -> AdminSession | None:
    query = select(AdminSession).where(
        AdminSession.session_hash == session_hash, col(AdminSession.expires_at) > now
    )
    return (await session.exec(query)).first()


async def delete_admin_session(session: AsyncSession, *, session_hash: str) -> None:
    await session.exec(delete(AdminSession).where(col(AdminSession.session_hash) == session_hash))


async def delete_admin_sessions_of(session: AsyncSession, *, user_ids: Sequence[int]) -> None:
    await session.exec(delete(AdminSession).where(col(AdminSession.user_id).in_(user_ids)))


async def purge_admin_sessions(session: AsyncSession, *, now: datetime) -> None:
    await session.exec(delete(AdminSession).where(col(AdminSession.expires_at) <= now))


# request logs (the admin API's and /logs' view)


@dataclass(frozen=True)
class LogFilter:
    since: datetime | None = None
    until: datetime | None = None
    provider: str | None = None
    model: str | None = None
    user: str | None = None
    key: str | None = None
    status: int | None = None
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    min_tokens: int | None = None
    after_id: int | None = None
    request_ids: list[str] | None = None  # from a full-text search


def _status_is(status: int) -> Any:
    condition = col(RequestLog.status) == status
    if status >= ERROR_STATUS:
        # the partial index of errors is used only when the query states its WHERE as written
        # (a literal, not a parameter): status = :status AND status >= 400
        condition = and_(condition, col(RequestLog.status) >= literal_column(str(ERROR_STATUS)))
    return condition


def _log_where(query: Any, f: LogFilter) -> Any:
    tokens = col(RequestLog.input_tokens) + col(RequestLog.output_tokens)
    conditions: list[tuple[Any, Callable[[Any], Any]]] = [
        (f.since, lambda v: col(RequestLog.created_at) >= v),
        (f.until, lambda v: col(RequestLog.created_at) < v),
        (f.provider, lambda v: col(RequestLog.provider) == v),
        (f.model, lambda v: col(RequestLog.model) == v),
        (f.user, lambda v: col(RequestLog.user_email) == v),
        (f.key, lambda v: col(RequestLog.key_name) == v),
        (f.status, _status_is),
        (f.min_latency_ms, lambda v: col(RequestLog.latency_ms) >= v),
        (f.max_latency_ms, lambda v: col(RequestLog.latency_ms) <= v),
        (f.min_tokens, lambda v: tokens >= v),
        (f.after_id, lambda v: col(RequestLog.id) > v),
        (f.request_ids, lambda v: col(RequestLog.request_id).in_(v)),
    ]
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition(value))
    return query


async def search_request_logs(
    session: AsyncSession, log_filter: LogFilter, *, limit: int = 100, offset: int = 0
) -> Sequence[RequestLog]:
    query = _log_where(select(RequestLog), log_filter)
    query = query.order_by(col(RequestLog.id).desc()).offset(offset).limit(limit)
    rows: Sequence[RequestLog] = (await session.exec(query)).all()
    return rows


async def request_log_totals(session: AsyncSession, log_filter: LogFilter) -> dict[str, Any]:
    query = select(
        func.count(),
        func.coalesce(func.sum(RequestLog.input_tokens), 0),
        func.coalesce(func.sum(RequestLog.output_tokens), 0),
        func.coalesce(func.sum(RequestLog.cost_usd), 0.0),
    ).select_from(RequestLog)
    count, input_tokens, output_tokens, cost = (
        await session.exec(_log_where(query, log_filter))
    ).one()
    return {
        "requests": int(count),
        "input_tokens": int(input_tokens),
        "output_tokens": int(output_tokens),
        "cost_usd": round(float(cost), 6),
    }


async def get_request_log(session: AsyncSession, *, log_id: int) -> RequestLog | None:
    return await session.get(RequestLog, log_id)


async def usage_by_key(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Requests, tokens and cost per key name over all kept logs."""
    query = select(
        RequestLog.key_name,
        func.count(),
        func.coalesce(func.sum(RequestLog.input_tokens + RequestLog.output_tokens), 0),
        func.coalesce(func.sum(RequestLog.cost_usd), 0.0),
    ).group_by(col(RequestLog.key_name))
    return {
        str(name): {"requests": int(n), "tokens": int(t), "cost_usd": round(float(c or 0), 6)}
        for name, n, t, c in (await session.exec(query)).all()
        if name is not None
    }


# captured bodies and retention


async def insert_request_bodies(session: AsyncSession, *, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.exec(insert(RequestBody).values(rows))


async def get_request_body(session: AsyncSession, *, request_id: str) -> RequestBody | None:
    query = select(RequestBody).where(RequestBody.request_id == request_id)
    return (await session.exec(query)).first()


async def search_request_ids(session: AsyncSession, *, text_query: str, limit: int) -> list[str]:
    """Request ids whose captured conversation matches `text_query` (words, all required)."""
    words = re.findall(r"\w+", text_query)
    if not words:
        return []
    bind = session.bind
    if bind is not None and bind.dialect.name == "sqlite":
        match = " AND ".join('"' + w + '"' for w in words)  # quoted: no FTS5 syntax from users
        # ordered by the FTS table's rowid, which FTS5 walks newest first and stops at `limit`
        # (ordered by b.id, every match was fetched and sorted first)
        statement = sql_text(
            "SELECT b.request_id FROM request_body_fts f JOIN request_body b ON b.id = f.rowid "
            "WHERE request_body_fts MATCH :match ORDER BY f.rowid DESC LIMIT :limit"
        ).bindparams(match=match, limit=limit)
    else:  # the very expression of the GIN index, so the planner uses it
        statement = sql_text(
            f"SELECT request_id FROM request_body WHERE {REQUEST_BODY_TSVECTOR} "  # noqa: S608 - a constant
            "@@ plainto_tsquery('simple', :query) ORDER BY id DESC LIMIT :limit"
        ).bindparams(query=" ".join(words), limit=limit)
    result = await session.exec(statement)  # type: ignore[call-overload]
    return [str(row[0]) for row in result.all()]


async def purge_older_than(session: AsyncSession, *, cutoff: datetime) -> int:
    """Delete request logs and captured bodies from before `cutoff` (retention)."""
    await session.exec(delete(RequestBody).where(col(RequestBody.created_at) < cutoff))
    result = await session.exec(delete(RequestLog).where(col(RequestLog.created_at) < cutoff))
    return int(result.rowcount or 0)


async def list_admin_sessions(session: AsyncSession, *, now: datetime) -> Sequence[AdminSession]:
    query = select(AdminSession).where(col(AdminSession.expires_at) > now)
    return (await session.exec(query.order_by(col(AdminSession.id)))).all()


async def get_admin_session_by_id(session: AsyncSession, *, row_id: int) -> AdminSession | None:
    return await session.get(AdminSession, row_id)
