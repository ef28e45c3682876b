"""Admin API tokens: created with a secret shown once, stored as a keyed hash, revocable."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.crypto import Keyring
from gatepass.manage import ManageError, check_name
from gatepass.manage.audit import record, snapshot
from gatepass.store import admin_queries
from gatepass.store.admin import AdminToken
from gatepass.store.types import utcnow

TOKEN_PREFIX = "gpa-"


@dataclass(frozen=True)
class IssuedAdminToken:
    token: AdminToken
    secret: str


async def create_admin_token(
    session: AsyncSession, keyring: Keyring, *, name: str, read_only: bool = False
) -> IssuedAdminToken:
    check_name("admin token", name)
    if await admin_queries.get_admin_token(session, name=name) is not None:
        raise ManageError(f"an admin token named {name!r} already exists")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AdminToken(
        name=name,
        prefix=secret[:10],
        token_hash=keyring.hash_credential(secret),
        read_only=read_only,
    )
    session.add(token)
    await session.flush()
    record(session, "admin_token.create", name, after=snapshot(token))
    return IssuedAdminToken(token, secret)


async def list_admin_tokens(session: AsyncSession) -> Sequence[AdminToken]:
    return await admin_queries.list_admin_tokens(session)


async def revoke_admin_token(session: AsyncSession, *, name: str) -> AdminToken:
    token = await admin_queries.get_admin_token(session, name=name)
    if token is None:
        raise ManageError(f"no admin token named {name!r}")
    if token.revoked_at is None:
        before = snapshot(token)
        token.revoked_at = utcnow()
        session.add(token)
        await session.flush()
        record(session, "admin_token.revoke", name, before=before, after=snapshot(token))
    return token


async def revoke_admin_session(session: AsyncSession, *, session_id: int) -> None:
    """End one admin browser session now (its next request is refused)."""
    row = await admin_queries.get_admin_session_by_id(session, row_id=session_id)
    if row is None:
        raise ManageError(f"no admin session with id {session_id}")
    record(session, "admin_session.revoke", row.email, before=snapshot(row))
    await session.delete(row)
    await session.flush()
