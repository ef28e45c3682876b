"""Rows as the admin API shows them: ids and settings, never a secret, hash or ciphertext."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gatepass.limits.spec import LimitSpec
from gatepass.store.admin import AdminSession, AdminToken
from gatepass.store.events import AuditEvent
from gatepass.store.identity import GroupMapping, IdpConnection, User
from gatepass.store.models import ModelRoute, Provider, RequestLog, VirtualKey
from gatepass.store.oauth import OAuthClient


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def key(row: VirtualKey) -> dict[str, Any]:
    now = datetime.now(UTC)
    status = "active"
    if row.revoked_at is not None:
        status = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        status = "expired"
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "models": row.allowed_models,
        "status": status,
        "expires_at": _time(row.expires_at),
        "revoked_at": _time(row.revoked_at),
        "created_at": _time(row.created_at),
        "limits": LimitSpec.describe(row),
    }


def provider(row: Provider) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "base_url": row.base_url,
        "timeout": row.timeout,
        "extra_headers": sorted(row.extra_headers or {}),  # names only: values may be secret
        "created_at": _time(row.created_at),
    }


def model(row: ModelRoute, owner: Provider) -> dict[str, Any]:
    return {
        "id": row.model_id,
        "provider": owner.name,
        "upstream_model": row.upstream_model,
        "display_name": row.display_name,
        "aliases": row.aliases,
    }


def idp(row: IdpConnection, public_url: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "issuer": row.issuer,
        "client_id": row.client_id,
        "scopes": row.scopes,
        "groups_claim": row.groups_claim,
        "allowed_domains": row.allowed_domains,
        "require_verified_email": row.require_verified_email,
        "audiences": row.audiences,
        "redirect_uri": f"{public_url}/sso/callback/{row.name}",
    }


def client(row: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": row.client_id,
        "name": row.name,
        "public": row.public,
        "redirect_uris": row.redirect_uris,
    }


def mapping(row: GroupMapping, owner: IdpConnection, target: VirtualKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "idp": owner.name,
        "group": row.group,
        "email": row.email,
        "key": target.name,
        "priority": row.priority,
        "role": row.role,
    }


def user(row: User) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "groups": row.groups,
        "disabled": row.disabled,
        "last_login_at": _time(row.last_login_at),
        "created_at": _time(row.created_at),
    }


def audit(row: AuditEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "time": _time(row.created_at),
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "outcome": row.outcome,
        "detail": row.detail,
        "ip": row.ip,
    }


def admin_token(row: AdminToken) -> dict[str, Any]:
    return {
        "name": row.name,
        "prefix": row.prefix,
        "read_only": row.read_only,
        "created_at": _time(row.created_at),
        "revoked_at": _time(row.revoked_at),
        "last_used_at": _time(row.last_used_at),
    }


def request_log(row: RequestLog) -> dict[str, Any]:
    data = row.model_dump()
    data["created_at"] = _time(row.created_at)
    return data


def admin_session(row: AdminSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "user_id": row.user_id,
        "created_at": _time(row.created_at),
        "expires_at": _time(row.expires_at),
    }
