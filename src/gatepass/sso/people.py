"""Who a signed-in person is to Gatepass: their user row, and the key their mappings give them.

Mappings resolve fail-closed (`policy.mappings.resolve_mapping`); the mapping that decides
must point at a key that is still usable. A revoked or expired key does not fall through to
a lower-priority mapping: the security team's ordering says which key this person gets, and
that key being gone means no access until they change it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.identity import Role, SignedIn
from gatepass.policy.mappings import resolve_mapping
from gatepass.sso.claims import Groups
from gatepass.store import identity_queries, sso_queries
from gatepass.store.identity import GroupMapping, IdpConnection, User
from gatepass.store.models import VirtualKey


@dataclass(frozen=True, slots=True)
class Access:
    key_id: int
    role: Role


@dataclass(frozen=True, slots=True)
class NoAccess:
    reason: Literal["no_mapping", "key_revoked", "key_expired"]


async def resolve_access(
    session: AsyncSession, *, idp_id: int, user: User, now: datetime
) -> Access | NoAccess:
    """The key this person gets now, from their stored email and groups."""
    rows = await identity_queries.list_mappings(session, idp_id=idp_id)
    found = choose_key(
        [(mapping, key) for mapping, _, key in rows],
        email=user.email,
        groups=user.groups,
        groups_complete=user.groups_complete,
        now=now,
    )
    return found if isinstance(found, NoAccess) else found[0]


def choose_key(
    rows: Sequence[tuple[GroupMapping, VirtualKey]],
    *,
    email: str | None,
    groups: Sequence[str],
    groups_complete: bool,
    now: datetime,
) -> tuple[Access, VirtualKey] | NoAccess:
    """The deciding mapping's key, if it is still usable (no I/O: `rows` are one IdP's)."""
    keys = {mapping.id: key for mapping, key in rows}
    mapping = resolve_mapping(
        [mapping for mapping, _ in rows],
        email=email,
        groups=groups,
        groups_complete=groups_complete,
    )
    if mapping is None:
        return NoAccess("no_mapping")
    key = keys[mapping.id]
    if key.revoked_at is not None:
        return NoAccess("key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        return NoAccess("key_expired")
    assert key.id is not None
    return Access(key_id=key.id, role="admin" if mapping.role == "admin" else "user"), key


async def record_sign_in(
    session: AsyncSession,
    *,
    idp: IdpConnection,
    subject: str,
    email: str,
    name: str | None,
    groups: Groups,
    now: datetime,
) -> User:
    """Create or update the person keyed on (issuer, subject) with what the IdP said now."""
    assert idp.id is not None
    user = await identity_queries.get_user_by_subject(session, issuer=idp.issuer, subject=subject)
    if user is None:
        user = User(
            public_id=secrets.token_urlsafe(16),
            idp_id=idp.id,
            issuer=idp.issuer,
            subject=subject,
        )
    user.idp_id = idp.id  # two connections may share an issuer; the latest one signed them in
    update_profile(user, email=email, name=name, groups=groups)
    user.last_login_at = now
    user.last_idp_check_at = now
    user.idp_grant_lost_at = None  # the IdP vouches for them again
    sso_queries.save_user(session, user)
    await session.flush()
    return user


def update_profile(user: User, *, email: str, name: str | None, groups: Groups) -> None:
    user.email = email
    if name is not None:
        user.name = name
    user.groups = list(groups.values)
    user.groups_complete = groups.complete


def signed_in(user: User, *, idp_name: str, access: Access, auth_time: datetime) -> SignedIn:
    assert user.id is not None
    return SignedIn(
        user_id=user.id,
        public_id=user.public_id,
        email=user.email,
        name=user.name,
        groups=tuple(user.groups),
        idp_name=idp_name,
        key_id=access.key_id,
        role=access.role,
        auth_time=auth_time,
    )
