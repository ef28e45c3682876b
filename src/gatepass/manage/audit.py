"""Who made a change, and the audit event every change through `manage` leaves behind.

The actor is carried in a context variable so that the same operations serve the CLI and
`apply` (actor "cli", the default) and the admin API (an admin's email, or
"token:<name>" for an admin API token) without threading it through every signature.
Snapshots hold ids and settings only, never a secret, hash or encrypted value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.events import AuditEvent

_actor: ContextVar[str] = ContextVar("gatepass_audit_actor", default="cli")
_ip: ContextVar[str | None] = ContextVar("gatepass_audit_ip", default=None)

# Columns that hold or derive from a secret: never copied into an audit event.
SECRET_FIELDS = frozenset(
    {
        "secret_hash",
        "api_key_encrypted",
        "client_secret_encrypted",
        "upstream_refresh_token_encrypted",
        "token_hash",
        "session_hash",
    }
)


def current_actor() -> str:
    return _actor.get()


@contextmanager
def acting_as(actor: str, ip: str | None = None) -> Iterator[None]:
    """Record changes made inside this block as `actor`'s."""
    token, ip_token = _actor.set(actor), _ip.set(ip)
    try:
        yield
    finally:
        _actor.reset(token)
        _ip.reset(ip_token)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def snapshot(row: SQLModel | None) -> dict[str, Any] | None:
    """A row's columns without secrets, JSON-ready (for before/after)."""
    if row is None:
        return None
    return {
        name: _plain(value)
        for name, value in row.model_dump().items()
        if name not in SECRET_FIELDS and not name.endswith(("_encrypted", "_hash"))
    }


def record(
    session: AsyncSession,
    action: str,
    target: str | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    outcome: str = "ok",
    extra: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event to the caller's transaction: it is kept if and only if the change is."""
    detail: dict[str, Any] = {}
    if before is not None:
        detail["before"] = before
    if after is not None:
        detail["after"] = after
    if extra:
        detail.update(extra)
    event = AuditEvent(
        actor=_actor.get(),
        action=action,
        target=target,
        outcome=outcome,
        detail=detail,
        ip=_ip.get(),
    )
    session.add(event)
    return event
