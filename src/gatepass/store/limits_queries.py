"""Spend read back from the request log: seeds budget counters, answers the usage endpoint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.models import RequestLog


async def spend_between(
    session: AsyncSession,
    *,
    key_id: int,
    user_email: str | None,
    start: datetime,
    end: datetime,
) -> tuple[int, float]:
    """Counted tokens (input, cache writes, output) and USD logged for a key (and user)."""
    tokens = func.coalesce(
        func.sum(
            col(RequestLog.input_tokens)
            + col(RequestLog.cache_creation_input_tokens)
            + col(RequestLog.output_tokens)
        ),
        0,
    )
    cost = func.coalesce(func.sum(col(RequestLog.cost_usd)), 0.0)
    query = select(tokens, cost).where(
        col(RequestLog.key_id) == key_id,
        col(RequestLog.created_at) >= start,
        col(RequestLog.created_at) < end,
    )
    if user_email is not None:
        query = query.where(col(RequestLog.user_email) == user_email)
    row = (await session.exec(query)).one()
    return int(row[0] or 0), float(row[1] or 0.0)
