"""Audit events for sign-ins: who, through which IdP, what happened and why (never secrets)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from gatepass.store import identity_queries
from gatepass.store.db import SessionMaker
from gatepass.store.events import AuditEvent

log = logging.getLogger("gatepass.sso")


async def record(
    sessions: SessionMaker,
    *,
    action: str,
    outcome: str,
    idp_name: str | None,
    actor: str | None = None,
    request: Request | None = None,
    **detail: Any,
) -> None:
    """Write one audit event in its own transaction (a failure must not undo it)."""
    ip = request.client.host if request is not None and request.client else None
    event = AuditEvent(
        actor=actor[:320] if actor else None,
        action=action,
        target=idp_name[:320] if idp_name else None,
        outcome=outcome,
        detail={k: v for k, v in detail.items() if v is not None},
        ip=ip,
    )
    try:
        async with sessions() as session:
            identity_queries.add_audit(session, event)
            await session.commit()
    except Exception:  # the person still gets their page; the log keeps what was lost
        log.exception("could not record audit event %s %s %s", action, outcome, detail)
