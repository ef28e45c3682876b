"""Tables for what happened: the audit trail, and the change counter replicas watch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer
from sqlmodel import Field, SQLModel

from gatepass.store.types import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    """Append-only record of sign-ins, denials and changes. Never holds a secret (ids only)."""

    __tablename__ = "audit_event"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), index=True)
    )
    actor: str | None = Field(default=None, max_length=320)  # email, "cli", or None
    action: str = Field(max_length=64, index=True)  # e.g. "login.success", "key.revoke"
    target: str | None = Field(default=None, max_length=320)
    outcome: str = Field(default="ok", max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    ip: str | None = Field(default=None, max_length=64)


class ChangeEpoch(SQLModel, table=True):
    """One row whose counter goes up on every revocation, disablement or mapping change.

    Each replica reads it about once a second and drops its caches when it moved, so a
    revocation made by any process (CLI, admin API, another replica) is seen everywhere.
    """

    __tablename__ = "change_epoch"

    id: int = Field(default=1, primary_key=True)
    value: int = 0
