"""Tables for the security team's surface: admin API tokens and admin browser sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from gatepass.store.types import UTCDateTime, utcnow


class AdminToken(SQLModel, table=True):
    """A bearer token for the admin API; only its keyed hash is stored."""

    __tablename__ = "admin_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    prefix: str = Field(max_length=16)
    token_hash: str = Field(unique=True, max_length=64)
    read_only: bool = False
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    last_used_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class AdminSession(SQLModel, table=True):
    """A signed-in admin's browser; the cookie holds a random id, the row its keyed hash."""

    __tablename__ = "admin_session"

    id: int | None = Field(default=None, primary_key=True)
    session_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="gp_user.id", ondelete="CASCADE", index=True)
    email: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
