"""SQLModel tables. Every change to them goes through an Alembic migration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, false, text
from sqlmodel import Field, SQLModel

from gatepass.store.types import UTCDateTime, utcnow

ERROR_STATUS = 400  # request_log rows from this status up: the partial index of errors


def _utc(index: bool = False, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Provider(SQLModel, table=True):
    """An upstream that serves models; its API key is stored encrypted, never returned."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    kind: str = Field(default="anthropic", max_length=32)
    base_url: str = Field(max_length=500)
    api_key_encrypted: str
    timeout: float = 600.0  # seconds
    extra_headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class ModelRoute(SQLModel, table=True):
    """A public model id (as clients send it) routed to a provider and its upstream id."""

    __tablename__ = "model_route"

    id: int | None = Field(default=None, primary_key=True)
    model_id: str = Field(unique=True, max_length=200)
    provider_id: int = Field(foreign_key="provider.id", ondelete="RESTRICT", index=True)
    upstream_model: str | None = Field(default=None, max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class VirtualKey(SQLModel, table=True):
    """A credential handed to people or services; only its keyed hash is stored."""

    __tablename__ = "virtual_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    prefix: str = Field(max_length=16)
    secret_hash: str = Field(unique=True, max_length=64)
    allowed_models: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    expires_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # Claude Code managed settings served at /managed/settings to this key's users (None: 404)
    managed_settings: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Budgets and rate limits (None: no limit); see gatepass.limits. Per-user limits apply to
    # each signed-in user of the key separately; the key's own limits to all of them together.
    budget_usd: float | None = None
    budget_tokens: int | None = Field(default=None, sa_type=BigInteger)
    budget_period: str | None = Field(default=None, max_length=16)  # e.g. "1mo", "1d"
    budget_rolling: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    budget_anchor_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    rpm: int | None = None
    tpm: int | None = Field(default=None, sa_type=BigInteger)
    max_concurrent: int | None = None
    user_budget_usd: float | None = None
    user_budget_tokens: int | None = Field(default=None, sa_type=BigInteger)
    user_rpm: int | None = None
    user_tpm: int | None = Field(default=None, sa_type=BigInteger)
    user_max_concurrent: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class RequestLog(SQLModel, table=True):
    """One row per proxied request, written off the request path in batches."""

    __tablename__ = "request_log"
    __table_args__ = (
        Index("ix_request_log_key_created", "key_id", "created_at"),
        # /logs: the newest rows of one key or user come in index order (ORDER BY id DESC), so
        # the page stops after 100; errors (status >= 400) in a partial index, a small one.
        # Every index costs each proxied request a row insert: (user_email, id) replaced
        # (user_email, created_at) rather than joining it (migration 0008).
        Index("ix_request_log_key_name_id", "key_name", "id"),
        Index("ix_request_log_user_email_id", "user_email", "id"),
        Index(
            "ix_request_log_errors",
            "status",
            "id",
            sqlite_where=text(f"status >= {ERROR_STATUS}"),
            postgresql_where=text(f"status >= {ERROR_STATUS}"),
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc(index=True))
    request_id: str = Field(max_length=64, index=True)
    upstream_request_id: str | None = Field(default=None, max_length=128)
    method: str = Field(max_length=10)
    path: str = Field(max_length=200)
    key_id: int | None = None
    key_name: str | None = Field(default=None, max_length=200)
    user_email: str | None = Field(default=None, max_length=320)
    model: str | None = Field(default=None, max_length=200, index=True)
    provider: str | None = Field(default=None, max_length=100)
    status: int
    stream: bool = False
    latency_ms: float | None = None
    ttfb_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float | None = None  # from the price table; None where nothing is charged
    error_type: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=1000)
    client_disconnected: bool = False
