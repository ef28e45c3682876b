"""Data functions for the OAuth issuer: signing keys, authorization codes, refresh tokens,
revoked token families and device authorizations. One function per question, keyword-only, each taking its session.

The "mark used" functions (and the device flow's decide/consume) are single conditional
UPDATEs whose row count says who won: two concurrent redemptions of one code, refresh token or
device code can never both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Executable, delete, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.oauth import (
    AuthorizationCode,
    DeviceAuthorization,
    RefreshToken,
    RevokedFamily,
    SigningKey,
)

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


# device authorizations (RFC 8628)

LIVE_DEVICE_STATUSES = ("pending", "approved")


async def insert_device_authorization(
    session: AsyncSession, *, authorization: DeviceAuthorization
) -> DeviceAuthorization:
    session.add(authorization)
    await session.flush()
    return authorization


async def get_device_authorization(
    session: AsyncSession, *, device_code_hash: str
) -> DeviceAuthorization | None:
    query = select(DeviceAuthorization).where(
        DeviceAuthorization.device_code_hash == device_code_hash
    )
    return (await session.exec(query)).first()


async def get_device_authorization_by_user_code(
    session: AsyncSession, *, user_code: str
) -> DeviceAuthorization | None:
    """The newest request shown with `user_code` (live or not: the page says which)."""
    query = (
        select(DeviceAuthorization)
        .where(DeviceAuthorization.user_code == user_code)
        .order_by(col(DeviceAuthorization.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def is_user_code_live(session: AsyncSession, *, user_code: str, now: datetime) -> bool:
    """Whether a request that can still be approved or redeemed shows `user_code`."""
    query = select(DeviceAuthorization.id).where(
        DeviceAuthorization.user_code == user_code,
        col(DeviceAuthorization.status).in_(LIVE_DEVICE_STATUSES),
        col(DeviceAuthorization.expires_at) > now,
    )
    return (await session.exec(query)).first() is not None


async def record_device_poll(
    session: AsyncSession, *, authorization_id: int, now: datetime, interval: int
) -> None:
    await session.exec(
        update(DeviceAuthorization)
        .where(col(DeviceAuthorization.id) == authorization_id)
        .values(last_polled_at=now, poll_interval=interval)
    )


async def attach_device_approver(
    session: AsyncSession,
    *,
    authorization_id: int,
    user_id: int,
    key_id: int,
    auth_time: datetime,
    confirm_hash: str,
    now: datetime,
) -> bool:
    """Record who signed in to decide on a pending, live request; False if it is not."""
    statement = (
        update(DeviceAuthorization)
        .where(
            col(DeviceAuthorization.id) == authorization_id,
            col(DeviceAuthorization.status) == "pending",
            col(DeviceAuthorization.expires_at) > now,
        )
        .values(user_id=user_id, key_id=key_id, auth_time=auth_time, confirm_hash=confirm_hash)
    )
    return (await session.exec(statement)).rowcount == 1


async def decide_device_authorization(
    session: AsyncSession,
    *,
    authorization_id: int,
    confirm_hash: str,
    approve: bool,
    now: datetime,
) -> bool:
    """Approve or deny, only from the browser that signed in and only while pending and live."""
    statement = (
        update(DeviceAuthorization)
        .where(
            col(DeviceAuthorization.id) == authorization_id,
            col(DeviceAuthorization.status) == "pending",
            col(DeviceAuthorization.confirm_hash) == confirm_hash,
            col(DeviceAuthorization.expires_at) > now,
        )
        .values(status="approved" if approve else "denied", decided_at=now)
    )
    return (await session.exec(statement)).rowcount == 1


async def consume_device_authorization(
    session: AsyncSession, *, authorization_id: int, family_id: str, now: datetime
) -> bool:
    """True for exactly one poller per approved request: the one whose UPDATE changed it."""
    statement = (
        update(DeviceAuthorization)
        .where(
            col(DeviceAuthorization.id) == authorization_id,
            col(DeviceAuthorization.status) == "approved",
        )
        .values(status="consumed", family_id=family_id, consumed_at=now)
    )
    return (await session.exec(statement)).rowcount == 1


async def is_device_family(session: AsyncSession, *, family_id: str) -> bool:
    """Whether the token family was issued by the device flow (to a public, unregistered client)."""
    query = select(DeviceAuthorization.id).where(DeviceAuthorization.family_id == family_id)
    return (await session.exec(query)).first() is not None


async def delete_dead_device_authorizations(
    session: AsyncSession, *, expired_before: datetime, consumed_before: datetime
) -> int:
    """Forget requests never redeemed that expired before `expired_before`, and redeemed ones
    whose token family can no longer be alive (consumed before `consumed_before`)."""
    statement = delete(DeviceAuthorization).where(
        or_(
            (col(DeviceAuthorization.status) != "consumed")
            & (col(DeviceAuthorization.expires_at) < expired_before),
            col(DeviceAuthorization.consumed_at) < consumed_before,
        )
    )
    return (await session.exec(statement)).rowcount
