"""Data functions for IdP connections, users, mappings, OAuth clients and the change epoch."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.events import AuditEvent, ChangeEpoch
from gatepass.store.identity import GroupMapping, IdpConnection, User
from gatepass.store.models import VirtualKey
from gatepass.store.oauth import OAuthClient, RevokedFamily

# IdP connections


async def get_idp(session: AsyncSession, *, name: str) -> IdpConnection | None:
    return (await session.exec(select(IdpConnection).where(IdpConnection.name == name))).first()


async def get_idp_by_id(session: AsyncSession, *, idp_id: int) -> IdpConnection | None:
    return await session.get(IdpConnection, idp_id)


async def list_idps(session: AsyncSession) -> Sequence[IdpConnection]:
    return (await session.exec(select(IdpConnection).order_by(col(IdpConnection.name)))).all()


# users


async def get_user(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_subject(session: AsyncSession, *, issuer: str, subject: str) -> User | None:
    query = select(User).where(User.issuer == issuer, User.subject == subject)
    return (await session.exec(query)).first()


async def get_user_by_public_id(session: AsyncSession, *, public_id: str) -> User | None:
    return (await session.exec(select(User).where(User.public_id == public_id))).first()


async def find_users_by_email(session: AsyncSession, *, email: str) -> Sequence[User]:
    query = select(User).where(col(User.email) == email.strip().lower())
    return (await session.exec(query)).all()


async def list_users(session: AsyncSession) -> Sequence[User]:
    return (await session.exec(select(User).order_by(col(User.id)))).all()


# mappings


async def list_mappings(
    session: AsyncSession, *, idp_id: int | None = None
) -> Sequence[tuple[GroupMapping, IdpConnection, VirtualKey]]:
    query = (
        select(GroupMapping, IdpConnection, VirtualKey)
        .join(IdpConnection, col(GroupMapping.idp_id) == col(IdpConnection.id))
        .join(VirtualKey, col(GroupMapping.key_id) == col(VirtualKey.id))
        .order_by(col(GroupMapping.priority), col(GroupMapping.id))
    )
    if idp_id is not None:
        query = query.where(GroupMapping.idp_id == idp_id)
    return (await session.exec(query)).all()


async def get_mapping(session: AsyncSession, *, mapping_id: int) -> GroupMapping | None:
    return await session.get(GroupMapping, mapping_id)


# OAuth clients


async def get_client(session: AsyncSession, *, client_id: str) -> OAuthClient | None:
    query = select(OAuthClient).where(OAuthClient.client_id == client_id)
    return (await session.exec(query)).first()


async def list_clients(session: AsyncSession) -> Sequence[OAuthClient]:
    return (await session.exec(select(OAuthClient).order_by(col(OAuthClient.client_id)))).all()


# change epoch and audit


async def bump_change_epoch(session: AsyncSession) -> None:
    """Tell every replica to drop its caches (they poll this counter)."""
    await session.exec(update(ChangeEpoch).values(value=col(ChangeEpoch.value) + 1))


async def read_change_epoch(session: AsyncSession) -> int:
    row = await session.get(ChangeEpoch, 1)
    return row.value if row is not None else 0


def add_audit(session: AsyncSession, event: AuditEvent) -> None:
    session.add(event)


async def load_session_state(
    session: AsyncSession, *, public_id: str, key_id: int, family_id: str
) -> tuple[User, VirtualKey, bool] | None:
    """The user and key behind a token, and whether its session was revoked: one query."""
    query = (
        select(User, VirtualKey, RevokedFamily.family_id)
        .select_from(User)
        .join(VirtualKey, col(VirtualKey.id) == key_id)
        .outerjoin(RevokedFamily, col(RevokedFamily.family_id) == family_id)
        .where(User.public_id == public_id)
    )
    row = (await session.exec(query)).first()
    if row is None:
        return None
    user, key, revoked = row
    return user, key, revoked is not None
