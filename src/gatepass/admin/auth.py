"""Who is calling the admin surface: an admin API token or a server-side admin session.

Tokens (`Authorization: Bearer gpa-...`) are looked up by keyed hash; a read-only token may
only read. Sessions keep a random id in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS)
and the rest server-side; each request re-checks that the person is enabled and still mapped
as an admin, so disabling them or removing the mapping ends the session at once. Mutations
authorised by a session need the session's CSRF token (header or form field); bearer tokens
are not sent by browsers on their own, so they need none.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from starlette.requests import Request
from starlette.responses import Response

from gatepass.admin.errors import AdminError
from gatepass.manage.admin_tokens import TOKEN_PREFIX
from gatepass.sso.people import Access, resolve_access
from gatepass.store import admin_queries, identity_queries
from gatepass.store.admin import AdminSession
from gatepass.store.types import utcnow

if TYPE_CHECKING:
    from gatepass.runtime import Gateway

SESSION_COOKIE = "gatepass_admin"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Principal:
    """An authorised admin caller; `actor` is what the audit trail records."""

    actor: str
    via: Literal["token", "session"]
    read_only: bool = False
    session_id: str | None = None  # the cookie's value, when via a session
    csrf_token: str | None = None


class AdminAuth:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def csrf_for(self, session_id: str) -> str:
        return self.gateway.keyring.hash_credential("admin-csrf:" + session_id)

    async def authenticate(self, request: Request) -> Principal:
        """The caller, or `AdminError` 401 (no valid credential) / 403 (not an admin)."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, credential = header.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip().startswith(TOKEN_PREFIX):
                raise AdminError(401, "authentication_required", "An admin API token is needed.")
            return await self._token(credential.strip())
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            principal = await self.session(session_id)
            if principal is not None:
                return principal
        raise AdminError(
            401, "authentication_required", "Sign in at /admin or send an admin API token."
        )

    async def _token(self, secret: str) -> Principal:
        token_hash = self.gateway.keyring.hash_credential(secret)
        async with self.gateway.sessions() as session:
            token = await admin_queries.get_admin_token_by_hash(session, token_hash=token_hash)
            if token is None or token.revoked_at is not None:
                raise AdminError(
                    401, "authentication_required", "This admin API token is unknown or revoked."
                )
            token.last_used_at = utcnow()
            session.add(token)
            await session.commit()
            return Principal(actor=f"token:{token.name}", via="token", read_only=token.read_only)

    async def session(self, session_id: str) -> Principal | None:
        """The admin behind a session cookie, or None (and the row gone) if it has ended."""
        session_hash = self.gateway.keyring.hash_credential(session_id)
        now = utcnow()
        async with self.gateway.sessions() as session:
            row = await admin_queries.get_admin_session(session, session_hash=session_hash, now=now)
            if row is None:
                return None
            user = await identity_queries.get_user(session, user_id=row.user_id)
            access = (
                None
                if user is None or user.disabled
                else await resolve_access(session, idp_id=user.idp_id, user=user, now=now)
            )
            if not isinstance(access, Access) or access.role != "admin":
                await admin_queries.delete_admin_session(session, session_hash=session_hash)
                await session.commit()
                if user is not None and not user.disabled:
                    raise AdminError(403, "forbidden", "You are no longer an administrator.")
                return None
            return Principal(
                actor=row.email or f"user:{row.user_id}",
                via="session",
                session_id=session_id,
                csrf_token=self.csrf_for(session_id),
            )

    def check_write(self, principal: Principal, request: Request, form_token: str | None) -> None:
        """Refuse a mutation by a read-only token, or by a session without its CSRF token."""
        if principal.read_only:
            raise AdminError(403, "forbidden", "This admin API token is read-only.")
        if principal.via == "session":
            given = request.headers.get(CSRF_HEADER) or form_token or ""
            expected = principal.csrf_token or ""
            if not given or not hmac.compare_digest(given.encode(), expected.encode()):
                raise AdminError(403, "forbidden", "The CSRF token is missing or wrong.")

    async def start_session(self, response: Response, *, user_id: int, email: str | None) -> str:
        """A new session (a new id at every sign-in: no fixation); sets the cookie."""
        session_id = secrets.token_urlsafe(32)
        ttl = self.gateway.settings.admin.session_ttl
        async with self.gateway.sessions() as session:
            await admin_queries.purge_admin_sessions(session, now=utcnow())
            session.add(
                AdminSession(
                    session_hash=self.gateway.keyring.hash_credential(session_id),
                    user_id=user_id,
                    email=email,
                    expires_at=utcnow() + timedelta(seconds=ttl),
                )
            )
            await session.commit()
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=ttl,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.gateway.settings.secure_cookies,
        )
        return session_id

    async def end_session(self, response: Response, session_id: str | None) -> None:
        if session_id:
            async with self.gateway.sessions() as session:
                await admin_queries.delete_admin_session(
                    session, session_hash=self.gateway.keyring.hash_credential(session_id)
                )
                await session.commit()
        response.delete_cookie(SESSION_COOKIE, path="/")
