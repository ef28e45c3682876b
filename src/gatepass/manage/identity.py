"""Operations on IdP connections, OAuth clients, group mappings and users.

Changes that can take access away (removing a mapping or an IdP, disabling a user) bump the
change epoch so that every replica drops its cached view within about a second.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.crypto import Keyring
from gatepass.manage import ManageError, check_name
from gatepass.manage.audit import record, snapshot
from gatepass.policy.mappings import normalise_email
from gatepass.store import identity_queries as q
from gatepass.store import queries
from gatepass.store.identity import GroupMapping, IdpConnection, User
from gatepass.store.oauth import OAuthClient
from gatepass.store.types import utcnow

DOMAIN_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
CLAIM_PATH_PATTERN = re.compile(r"^[A-Za-z0-9_:/$-]+(\.[A-Za-z0-9_:/$-]+)*$")
ROLES = ("user", "admin")
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")


def _check_issuer(issuer: str) -> str:
    parts = urlsplit(issuer)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ManageError(f"issuer {issuer!r} must be https:// (http only on loopback)")
    if not parts.netloc or parts.query or parts.fragment:
        raise ManageError(f"invalid issuer {issuer!r}")
    return issuer.rstrip("/")


def _check_domain(domain: str) -> str:
    domain = domain.strip().lower().lstrip("@")
    if not DOMAIN_PATTERN.match(domain):
        raise ManageError(f"invalid email domain {domain!r}")
    return domain


def check_redirect_uri(uri: str) -> str:
    """Absolute, no fragment; plain http only on a loopback host (RFC 8252 §7.3, §8.3)."""
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc or parts.scheme not in ("http", "https"):
        if parts.scheme in ("http", "https") or ":" not in uri:
            raise ManageError(
                f"invalid redirect URI {uri!r}: absolute http(s) URI without fragment"
            )
        return uri  # a private-use scheme (RFC 8252 §7.1), matched exactly
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise ManageError(f"redirect URI {uri!r}: plain http is allowed only on loopback")
    return uri


# IdP connections


async def add_idp(
    session: AsyncSession,
    keyring: Keyring,
    *,
    name: str,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    scopes: str = "openid profile email",
    groups_claim: str = "groups",
    allowed_domains: Sequence[str] = (),
    require_verified_email: bool = True,
    audiences: Sequence[str] = (),
) -> IdpConnection:
    """Create or update an IdP connection; its client secret is stored encrypted."""
    check_name("IdP", name)
    issuer = _check_issuer(issuer)
    if not client_id.strip():
        raise ManageError("client id is empty")
    if "openid" not in scopes.split():
        raise ManageError("scopes must include 'openid'")
    if not CLAIM_PATH_PATTERN.match(groups_claim):
        raise ManageError(f"invalid groups claim path {groups_claim!r}")
    domains = [_check_domain(d) for d in allowed_domains]
    idp = await q.get_idp(session, name=name)
    before = _idp_snapshot(idp)
    if idp is None:
        idp = IdpConnection(name=name, issuer=issuer, client_id=client_id)
    idp.issuer = issuer
    idp.client_id = client_id.strip()
    idp.client_secret_encrypted = keyring.encrypt(client_secret) if client_secret else None
    idp.scopes = " ".join(dict.fromkeys(scopes.split()))
    idp.groups_claim = groups_claim
    idp.allowed_domains = list(dict.fromkeys(domains))
    idp.require_verified_email = require_verified_email
    idp.audiences = list(dict.fromkeys(a.strip() for a in audiences if a.strip()))
    idp.updated_at = utcnow()
    session.add(idp)
    await q.bump_change_epoch(session)
    await session.flush()
    action = "idp.update" if before else "idp.create"
    record(session, action, name, before=before, after=_idp_snapshot(idp))
    return idp


def _idp_snapshot(idp: IdpConnection | None) -> dict[str, Any] | None:
    view = snapshot(idp)
    if view is not None and idp is not None:
        view["has_client_secret"] = idp.client_secret_encrypted is not None
    return view


async def remove_idp(session: AsyncSession, *, name: str) -> None:
    idp = await q.get_idp(session, name=name)
    if idp is None:
        raise ManageError(f"no IdP named {name!r}")
    record(session, "idp.delete", name, before=_idp_snapshot(idp))
    await session.delete(idp)
    await q.bump_change_epoch(session)
    await session.flush()


# OAuth clients


async def add_client(
    session: AsyncSession,
    keyring: Keyring,
    *,
    client_id: str,
    redirect_uris: Sequence[str],
    public: bool = True,
    name: str | None = None,
) -> tuple[OAuthClient, str | None]:
    """Register a client; a confidential one gets a secret, returned here only."""
    check_name("client", client_id)
    if not redirect_uris:
        raise ManageError("a client needs at least one --redirect-uri")
    uris = list(dict.fromkeys(check_redirect_uri(u) for u in redirect_uris))
    client = await q.get_client(session, client_id=client_id)
    before = snapshot(client)
    if client is None:
        client = OAuthClient(client_id=client_id)
    secret = None
    client.name = name
    client.public = public
    client.redirect_uris = uris
    if public:
        client.secret_hash = None
    elif client.secret_hash is None:
        secret = "gpcs-" + secrets.token_urlsafe(32)
        client.secret_hash = keyring.hash_credential(secret)
    session.add(client)
    await session.flush()
    action = "client.update" if before else "client.create"
    record(session, action, client_id, before=before, after=snapshot(client))
    return client, secret


async def remove_client(session: AsyncSession, *, client_id: str) -> None:
    client = await q.get_client(session, client_id=client_id)
    if client is None:
        raise ManageError(f"no client {client_id!r}")
    record(session, "client.delete", client_id, before=snapshot(client))
    await session.delete(client)
    await q.bump_change_epoch(session)
    await session.flush()


# mappings


async def add_mapping(
    session: AsyncSession,
    *,
    idp: str,
    key: str,
    group: str | None = None,
    email: str | None = None,
    priority: int = 100,
    role: str = "user",
) -> GroupMapping:
    """Map an IdP group, or one person's email, to a virtual key."""
    if (group is None) == (email is None):
        raise ManageError("give exactly one of --group or --email")
    if group is not None and not group.strip():
        raise ManageError("the group name is empty")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email.strip()):
        raise ManageError(f"invalid email {email!r}")
    if role not in ROLES:
        raise ManageError(f"role must be one of {', '.join(ROLES)}")
    connection = await q.get_idp(session, name=idp)
    if connection is None:
        raise ManageError(f"no IdP named {idp!r}")
    virtual_key = await queries.get_key_by_name(session, name=key)
    if virtual_key is None:
        raise ManageError(f"no key named {key!r}")
    assert connection.id is not None
    assert virtual_key.id is not None
    mapping = GroupMapping(
        idp_id=connection.id,
        group=group,
        email=normalise_email(email),
        key_id=virtual_key.id,
        priority=priority,
        role=role,
    )
    session.add(mapping)
    await q.bump_change_epoch(session)
    await session.flush()
    after = snapshot(mapping) or {}
    after.update(idp=idp, key=key)
    record(session, "mapping.create", f"mapping:{mapping.id}", after=after)
    return mapping


async def remove_mapping(session: AsyncSession, *, mapping_id: int) -> None:
    mapping = await q.get_mapping(session, mapping_id=mapping_id)
    if mapping is None:
        raise ManageError(f"no mapping with id {mapping_id}")
    record(session, "mapping.delete", f"mapping:{mapping_id}", before=snapshot(mapping))
    await session.delete(mapping)
    await q.bump_change_epoch(session)
    await session.flush()


async def set_mapping_priority(
    session: AsyncSession, *, mapping_id: int, priority: int
) -> GroupMapping:
    """Move a mapping up or down (lower numbers decide first)."""
    mapping = await q.get_mapping(session, mapping_id=mapping_id)
    if mapping is None:
        raise ManageError(f"no mapping with id {mapping_id}")
    before = snapshot(mapping)
    mapping.priority = priority
    session.add(mapping)
    await q.bump_change_epoch(session)
    await session.flush()
    record(
        session, "mapping.update", f"mapping:{mapping_id}", before=before, after=snapshot(mapping)
    )
    return mapping


# users


async def set_user_disabled(session: AsyncSession, *, email: str, disabled: bool) -> list[User]:
    """Disable (or re-enable) every account with this email; their tokens stop working."""
    users = list(await q.find_users_by_email(session, email=email))
    if not users:
        raise ManageError(f"no user with email {email!r}")
    for user in users:
        before = user.disabled
        user.disabled = disabled
        session.add(user)
        record(
            session,
            "user.disable" if disabled else "user.enable",
            email.strip().lower(),
            before={"id": user.id, "disabled": before},
            after={"id": user.id, "disabled": disabled},
        )
    await q.bump_change_epoch(session)
    await session.flush()
    return users
