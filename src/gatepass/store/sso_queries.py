"""Data functions for the relying party: sign-ins in progress, users it signs in, their keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.identity import User
from gatepass.store.models import VirtualKey
from gatepass.store.oauth import PendingLogin

# sign-ins in progress


def add_pending_login(session: AsyncSession, pending: PendingLogin) -> None:
    session.add(pending)


async def get_pending_login(session: AsyncSession, *, state_hash: str) -> PendingLogin | None:
    query = select(PendingLogin).where(PendingLogin.state_hash == state_hash)
    return (await session.exec(query)).first()


async def choose_pending_idp(
    session: AsyncSession, *, pending_id: int, idp_id: int, now: datetime
) -> bool:
    """Set the IdP of a sign-in still waiting to be sent somewhere; False if it cannot be."""
    result = await session.exec(
        update(PendingLogin)
        .where(
            col(PendingLogin.id) == pending_id,
            col(PendingLogin.used_at).is_(None),
            col(PendingLogin.expires_at) > now,
        )
        .values(idp_id=idp_id)
    )
    return bool(result.rowcount == 1)


async def use_pending_login(session: AsyncSession, *, pending_id: int, now: datetime) -> bool:
    """Spend a sign-in's state: True for exactly one caller, however many race for it."""
    result = await session.exec(
        update(PendingLogin)
        .where(col(PendingLogin.id) == pending_id, col(PendingLogin.used_at).is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)


async def delete_stale_pending_logins(session: AsyncSession, *, before: datetime) -> int:
    """Forget sign-ins that expired before `before` (used or not)."""
    result = await session.exec(delete(PendingLogin).where(col(PendingLogin.expires_at) < before))
    return int(result.rowcount or 0)


# users


def save_user(session: AsyncSession, user: User) -> None:
    session.add(user)


async def claim_recheck_lease(
    session: AsyncSession, *, user_id: int, now: datetime, until: datetime
) -> bool:
    """Take the person's recheck lease: True for one caller at a time, on every replica."""
    free = or_(col(User.recheck_lease_until).is_(None), col(User.recheck_lease_until) <= now)
    result = await session.exec(
        update(User).where(col(User.id) == user_id, free).values(recheck_lease_until=until)
    )
    return bool(result.rowcount == 1)


async def release_recheck_lease(session: AsyncSession, *, user_id: int, until: datetime) -> None:
    """Give the lease back, unless it expired and someone else holds it now."""
    await session.exec(
        update(User)
        .where(col(User.id) == user_id, col(User.recheck_lease_until) == until)
        .values(recheck_lease_until=None)
    )


async def any_disabled_user(
    session: AsyncSession, *, issuer: str, subjects: Sequence[str], email: str
) -> bool:
    """Whether a disabled user at `issuer` has one of these subjects, or this email."""
    query = select(User.id).where(
        User.issuer == issuer,
        col(User.disabled).is_(True),
        or_(col(User.subject).in_(subjects), col(User.email) == email),
    )
    return (await session.exec(query)).first() is not None


# keys


async def get_key(session: AsyncSession, *, key_id: int) -> VirtualKey | None:
    return await session.get(VirtualKey, key_id)
