"""Data functions: one per question, keyword-only, each taking the session it runs in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, insert, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.models import ModelRoute, Provider, RequestLog, VirtualKey
from gatepass.store.types import sqlite_datetime, utcnow

# providers


async def get_provider(session: AsyncSession, *, name: str) -> Provider | None:
    result = await session.exec(select(Provider).where(Provider.name == name))
    return result.first()


async def list_providers(session: AsyncSession) -> Sequence[Provider]:
    return (await session.exec(select(Provider).order_by(col(Provider.name)))).all()


async def upsert_provider(
    session: AsyncSession,
    *,
    name: str,
    kind: str,
    base_url: str,
    api_key_encrypted: str,
    timeout: float,
    extra_headers: dict[str, str],
) -> Provider:
    provider = await get_provider(session, name=name)
    if provider is None:
        provider = Provider(name=name, kind=kind, base_url=base_url, api_key_encrypted="")
    provider.kind = kind
    provider.base_url = base_url
    provider.api_key_encrypted = api_key_encrypted
    provider.timeout = timeout
    provider.extra_headers = extra_headers
    provider.updated_at = utcnow()
    session.add(provider)
    await session.flush()
    return provider


async def delete_provider(session: AsyncSession, *, name: str) -> bool:
    provider = await get_provider(session, name=name)
    if provider is None:
        return False
    await session.delete(provider)
    await session.flush()
    return True


# model routes


async def get_model_route(session: AsyncSession, *, model_id: str) -> ModelRoute | None:
    result = await session.exec(select(ModelRoute).where(ModelRoute.model_id == model_id))
    return result.first()


async def list_model_routes(session: AsyncSession) -> Sequence[tuple[ModelRoute, Provider]]:
    query = (
        select(ModelRoute, Provider)
        .join(Provider, col(ModelRoute.provider_id) == col(Provider.id))
        .order_by(col(ModelRoute.id))
    )
    return (await session.exec(query)).all()


async def upsert_model_route(
    session: AsyncSession,
    *,
    model_id: str,
    provider_id: int,
    upstream_model: str | None,
    display_name: str | None,
    aliases: list[str],
) -> ModelRoute:
    route = await get_model_route(session, model_id=model_id)
    if route is None:
        route = ModelRoute(model_id=model_id, provider_id=provider_id)
    route.provider_id = provider_id
    route.upstream_model = upstream_model
    route.display_name = display_name
    route.aliases = aliases
    session.add(route)
    await session.flush()
    return route


async def delete_model_route(session: AsyncSession, *, model_id: str) -> bool:
    route = await get_model_route(session, model_id=model_id)
    if route is None:
        return False
    await session.delete(route)
    await session.flush()
    return True


# virtual keys


async def get_key_by_name(session: AsyncSession, *, name: str) -> VirtualKey | None:
    return (await session.exec(select(VirtualKey).where(VirtualKey.name == name))).first()


async def get_key_by_hash(session: AsyncSession, *, secret_hash: str) -> VirtualKey | None:
    result = await session.exec(select(VirtualKey).where(VirtualKey.secret_hash == secret_hash))
    return result.first()


async def list_keys(session: AsyncSession) -> Sequence[VirtualKey]:
    return (await session.exec(select(VirtualKey).order_by(col(VirtualKey.id)))).all()


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    prefix: str,
    secret_hash: str,
    allowed_models: list[str],
    expires_at: datetime | None,
) -> VirtualKey:
    key = VirtualKey(
        name=name,
        prefix=prefix,
        secret_hash=secret_hash,
        allowed_models=allowed_models,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return key


# request logs


# `created_at` first: it is the one value SQLite needs converted (see insert_request_logs)
REQUEST_LOG_COLUMNS = (
    "created_at",
    *(name for name in RequestLog.model_fields if name not in ("id", "created_at")),
)
_other_log_values = itemgetter(*REQUEST_LOG_COLUMNS[1:])
_request_log_inserts: dict[str, str] = {}


def _request_log_insert(dialect: Dialect) -> str:
    """The INSERT for `REQUEST_LOG_COLUMNS` in the dialect's own parameter style, compiled once."""
    sql = _request_log_inserts.get(dialect.name)
    if sql is None:
        compiled = insert(RequestLog).compile(
            dialect=dialect, column_keys=list(REQUEST_LOG_COLUMNS), for_executemany=True
        )
        if compiled.positiontup:  # positional styles: the values are given in our order
            assert tuple(compiled.positiontup) == REQUEST_LOG_COLUMNS, compiled.positiontup
        sql = _request_log_inserts[dialect.name] = str(compiled)
    return sql


async def insert_request_logs(session: AsyncSession, *, rows: list[dict[str, Any]]) -> None:
    """Insert a batch of log rows with one executemany at the driver level.

    Every proxied request ends here, so the rows skip SQLAlchemy's per-row parameter
    processing (a third of a row's cost); the one value that needs converting is
    `created_at`, which SQLite stores as text in SQLAlchemy's own format.
    """
    if not rows:
        return
    connection = await session.connection()
    sql = _request_log_insert(connection.dialect)
    values: list[Any]
    if connection.dialect.name == "sqlite":  # qmark: values in column order
        values = [(sqlite_datetime(row["created_at"]), *_other_log_values(row)) for row in rows]
    else:  # PostgreSQL (psycopg): named parameters, the rows as they are
        values = rows
    await connection.exec_driver_sql(sql, values)


async def list_request_logs(session: AsyncSession, *, limit: int = 100) -> Sequence[RequestLog]:
    query = select(RequestLog).order_by(col(RequestLog.id).desc()).limit(limit)
    return (await session.exec(query)).all()


async def ping(session: AsyncSession) -> None:
    connection = await session.connection()
    await connection.execute(text("SELECT 1"))
