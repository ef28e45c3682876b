"""Tables for who people are: IdP connections, users, and group mappings to virtual keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from gatepass.store.types import UTCDateTime, utcnow


def _utc(nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class IdpConnection(SQLModel, table=True):
    """A corporate OIDC identity provider Gatepass signs people in with (as a relying party)."""

    __tablename__ = "idp_connection"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    issuer: str = Field(max_length=500)
    client_id: str = Field(max_length=500)
    client_secret_encrypted: str | None = None
    scopes: str = Field(default="openid profile email", max_length=500)
    groups_claim: str = Field(default="groups", max_length=200)  # a dotted path
    allowed_domains: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    require_verified_email: bool = True
    audiences: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class User(SQLModel, table=True):
    """A person, keyed on (issuer, subject) at their IdP, never on email alone."""

    __tablename__ = "gp_user"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_user_issuer_subject"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(unique=True, max_length=64)  # the `sub` of Gatepass's own tokens
    idp_id: int = Field(foreign_key="idp_connection.id", ondelete="CASCADE", index=True)
    issuer: str = Field(max_length=500)
    subject: str = Field(max_length=255)
    email: str | None = Field(default=None, max_length=320, index=True)
    name: str | None = Field(default=None, max_length=300)
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    groups_complete: bool = True  # False when the IdP said the list was cut short
    disabled: bool = False
    upstream_refresh_token_encrypted: str | None = None
    last_idp_check_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    last_login_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    # held by the replica asking the IdP about this person now (see sso.recheck)
    recheck_lease_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # the IdP answered invalid_grant: refused everywhere until they sign in again
    idp_grant_lost_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class GroupMapping(SQLModel, table=True):
    """IdP group (or one user's email) → virtual key. Lowest `priority` wins; no match, no access."""

    __tablename__ = "group_mapping"

    id: int | None = Field(default=None, primary_key=True)
    idp_id: int = Field(foreign_key="idp_connection.id", ondelete="CASCADE", index=True)
    group: str | None = Field(default=None, max_length=500)
    email: str | None = Field(default=None, max_length=320)
    key_id: int = Field(foreign_key="virtual_key.id", ondelete="CASCADE", index=True)
    priority: int = 100
    role: str = Field(default="user", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
