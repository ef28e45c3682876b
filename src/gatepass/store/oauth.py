"""Tables for Gatepass as an OAuth/OIDC issuer: clients, signing keys, codes, refresh tokens,
sign-ins in progress, and revoked access tokens. Secrets are stored as keyed hashes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from gatepass.store.types import UTCDateTime, utcnow


def _utc(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class OAuthClient(SQLModel, table=True):
    """An application allowed to sign users in through Gatepass (e.g. Claude Desktop)."""

    __tablename__ = "oauth_client"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(unique=True, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    public: bool = True
    secret_hash: str | None = Field(default=None, max_length=64)
    redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class SigningKey(SQLModel, table=True):
    """A key Gatepass signs its tokens with; shared by every replica through the database."""

    __tablename__ = "signing_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(unique=True, max_length=64)
    alg: str = Field(default="RS256", max_length=16)
    private_jwk_encrypted: str
    public_jwk: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    active: bool = True  # signs new tokens; inactive keys stay published until retired
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    retire_after: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class PendingLogin(SQLModel, table=True):
    """A sign-in in progress at the corporate IdP, and what to do when it comes back."""

    __tablename__ = "pending_login"

    id: int | None = Field(default=None, primary_key=True)
    state_hash: str = Field(unique=True, max_length=64)
    browser_hash: str = Field(max_length=64)  # binds the callback to the browser that started
    purpose: str = Field(max_length=32)  # "authorize", "device", "admin"
    request: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    idp_id: int | None = Field(default=None, foreign_key="idp_connection.id", ondelete="CASCADE")
    nonce: str | None = Field(default=None, max_length=128)
    code_verifier_encrypted: str | None = None
    expires_at: datetime = Field(sa_column=_utc(index=True))
    used_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class AuthorizationCode(SQLModel, table=True):
    """One-time code (RFC 6749 §4.1.2), bound to client, redirect URI, PKCE challenge and user."""

    __tablename__ = "authorization_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(unique=True, max_length=64)
    client_id: str = Field(max_length=200)
    redirect_uri: str = Field(max_length=2000)
    code_challenge: str = Field(max_length=128)
    scope: str = Field(default="", max_length=500)
    nonce: str | None = Field(default=None, max_length=500)
    user_id: int = Field(foreign_key="gp_user.id", ondelete="CASCADE")
    key_id: int = Field(foreign_key="virtual_key.id", ondelete="CASCADE")
    family_id: str = Field(max_length=64)  # what this code issued, revoked if it is replayed
    auth_time: datetime = Field(sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())
    used_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class RefreshToken(SQLModel, table=True):
    """A refresh token (hashed). Rotated on use; reuse of a spent one revokes its family."""

    __tablename__ = "refresh_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    family_id: str = Field(max_length=64, index=True)
    client_id: str = Field(max_length=200)
    scope: str = Field(default="", max_length=500)
    user_id: int = Field(foreign_key="gp_user.id", ondelete="CASCADE", index=True)
    key_id: int = Field(foreign_key="virtual_key.id", ondelete="CASCADE")
    auth_time: datetime = Field(sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())  # idle lifetime
    family_expires_at: datetime = Field(sa_column=_utc())  # absolute lifetime
    used_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class RevokedFamily(SQLModel, table=True):
    """A sign-in session (token family) ended early; its access tokens stop working too."""

    __tablename__ = "revoked_family"

    family_id: str = Field(primary_key=True, max_length=64)
    revoked_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc(index=True))  # when it can be forgotten


class DeviceAuthorization(SQLModel, table=True):
    """A device-flow request (RFC 8628): its codes, who asked, and what the user decided.

    `status` moves pending → approved → consumed, or pending → denied. The person who signed
    in at the verification page is recorded (`user_id`, `key_id`, `auth_time`) before they
    decide; `confirm_hash` binds the decision to the browser that signed in. A consumed row is
    kept while its token family may live: refreshes look it up to know the family's client is
    a device-flow client (public, not registered).
    """

    __tablename__ = "device_authorization"

    id: int | None = Field(default=None, primary_key=True)
    device_code_hash: str = Field(unique=True, max_length=64)
    user_code: str = Field(max_length=16, index=True)  # normalised: 8 letters, no dash
    client_id: str | None = Field(default=None, max_length=200)  # as sent, if it was
    surface: str | None = Field(default=None, max_length=200)  # e.g. "claude_code"
    status: str = Field(default="pending", max_length=16)
    requester_ip: str | None = Field(default=None, max_length=64)
    requester_user_agent: str | None = Field(default=None, max_length=500)
    poll_interval: int = 5  # seconds between polls; slow_down raises it (RFC 8628 §3.5)
    last_polled_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc(index=True))
    user_id: int | None = Field(default=None, foreign_key="gp_user.id", ondelete="CASCADE")
    key_id: int | None = Field(default=None, foreign_key="virtual_key.id", ondelete="CASCADE")
    auth_time: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    confirm_hash: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    family_id: str | None = Field(default=None, max_length=64, index=True)  # once consumed
    consumed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
