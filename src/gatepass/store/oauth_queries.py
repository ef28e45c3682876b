"""Data functions for the OAuth issuer: signing keys, authorization codes, refresh tokens and
revoked token families. One function per question, keyword-only, each taking its session.

The "mark used" functions are single conditional UPDATEs whose row count says who won: two
concurrent redemptions of one code or one refresh token can never both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Executable, delete, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.oauth import AuthorizationCode, RefreshToken, RevokedFamily, SigningKey

# signing keys


async def list_signing_keys(session: AsyncSession, *, now: datetime) -> Sequence[SigningKey]:
    """Keys still in use: active ones and rotated ones within their grace period."""
    query = (
        select(SigningKey)
        .where(or_(col(SigningKey.active), col(SigningKey.retire_after) > now))
        .order_by(col(SigningKey.id))
    )
    return (await session.exec(query)).all()


async def insert_signing_key(session: AsyncSession, *, key: SigningKey) -> SigningKey:
    session.add(key)
    await session.flush()
    return key


async def retire_active_signing_keys(session: AsyncSession, *, retire_after: datetime) -> int:
    """Stop signing with the active keys; they keep verifying until `retire_after`."""
    statement = (
        update(SigningKey)
        .where(col(SigningKey.active))
        .values(active=False, retire_after=retire_after)
    )
    return (await session.exec(statement)).rowcount


async def delete_retired_signing_keys(session: AsyncSession, *, now: datetime) -> int:
    statement = delete(SigningKey).where(
        col(SigningKey.active).is_(False), col(SigningKey.retire_after) <= now
    )
    return (await session.exec(statement)).rowcount


# authorization codes


async def insert_authorization_code(
    session: AsyncSession, *, code: AuthorizationCode
) -> AuthorizationCode:
    session.add(code)
    await session.flush()
    return code


async def get_authorization_code(
    session: AsyncSession, *, code_hash: str
) -> AuthorizationCode | None:
    query = select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
    return (await session.exec(query)).first()


async def mark_authorization_code_used(
    session: AsyncSession, *, code_hash: str, now: datetime
) -> bool:
    """True for exactly one caller per code: the one whose UPDATE changed the row."""
    statement = (
        update(AuthorizationCode)
        .where(
            col(AuthorizationCode.code_hash) == code_hash, col(AuthorizationCode.used_at).is_(None)
        )
        .values(used_at=now)
    )
    return (await session.exec(statement)).rowcount == 1


async def delete_expired_authorization_codes(session: AsyncSession, *, before: datetime) -> int:
    statement = delete(AuthorizationCode).where(col(AuthorizationCode.expires_at) < before)
    return (await session.exec(statement)).rowcount


# refresh tokens


async def insert_refresh_token(session: AsyncSession, *, token: RefreshToken) -> RefreshToken:
    session.add(token)
    await session.flush()
    return token


async def get_refresh_token(session: AsyncSession, *, token_hash: str) -> RefreshToken | None:
    query = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.exec(query)).first()


async def mark_refresh_token_used(session: AsyncSession, *, token_id: int, now: datetime) -> bool:
    """True for exactly one caller per token: the one whose UPDATE changed the row."""
    statement = (
        update(RefreshToken)
        .where(
            col(RefreshToken.id) == token_id,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(used_at=now)
    )
    return (await session.exec(statement)).rowcount == 1


async def delete_dead_refresh_tokens(session: AsyncSession, *, before: datetime) -> int:
    """Forget refresh tokens whose family outlived its absolute lifetime before `before`."""
    statement = delete(RefreshToken).where(col(RefreshToken.family_expires_at) < before)
    return (await session.exec(statement)).rowcount


# token families (one sign-in session each)


async def revoke_family(
    session: AsyncSession, *, family_id: str, now: datetime, forget_after: datetime
) -> None:
    """Revoke every refresh token of the family and remember the family as revoked."""
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    values = {"family_id": family_id, "revoked_at": now, "expires_at": forget_after}
    dialect = session.get_bind().dialect.name
    statement: Executable
    if dialect == "sqlite":
        statement = sqlite_insert(RevokedFamily).values(values).on_conflict_do_nothing()
    elif dialect == "postgresql":
        statement = pg_insert(RevokedFamily).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        if await session.get(RevokedFamily, family_id) is not None:
            return
        statement = insert(RevokedFamily).values(values)
    await session.exec(statement)


async def is_family_revoked(session: AsyncSession, *, family_id: str) -> bool:
    query = select(RevokedFamily.family_id).where(RevokedFamily.family_id == family_id)
    return (await session.exec(query)).first() is not None


async def delete_forgotten_families(session: AsyncSession, *, before: datetime) -> int:
    statement = delete(RevokedFamily).where(col(RevokedFamily.expires_at) < before)
    return (await session.exec(statement)).rowcount
