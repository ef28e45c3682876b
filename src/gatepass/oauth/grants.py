"""The token endpoint's `authorization_code` and `refresh_token` grants (the device grant is in
`device_grant.py`).

Redemption is decided by one conditional UPDATE per code or refresh token (see
`store.oauth_queries`), so concurrent requests can never both succeed. A code or refresh
token presented again after use revokes its whole family (RFC 6749 §4.1.2, RFC 9700 §4.14.2).

Status codes: refresh-grant `invalid_grant` answers are 401, not RFC 6749 §5.2's 400, because
the Claude apps gateway protocol ("Refresh grant") makes `401 {"error":"invalid_grant"}` the
signal to sign in again; clients that follow RFC 6749 read the `error` code either way. Every
other error keeps RFC 6749's status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.config import SignInSettings
from gatepass.crypto import Keyring
from gatepass.identity import LoginBroker
from gatepass.oauth.errors import TokenError
from gatepass.oauth.families import Families
from gatepass.oauth.tokens import Grant, TokenMinter
from gatepass.store import identity_queries
from gatepass.store import oauth_queries as q
from gatepass.store.db import SessionMaker
from gatepass.store.oauth import OAuthClient, RefreshToken
from gatepass.store.types import utcnow

log = logging.getLogger("gatepass.oauth")

VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1
REFRESH_FAILED = 401  # see the module docstring


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _refused(description: str) -> TokenError:
    return TokenError("invalid_grant", description, status=REFRESH_FAILED)


@dataclass
class Grants:
    sessions: SessionMaker
    keyring: Keyring
    minter: TokenMinter
    families: Families
    broker: LoginBroker
    settings: SignInSettings

    async def authorization_code(
        self, client: OAuthClient, *, code: str, redirect_uri: str | None, verifier: str | None
    ) -> dict[str, Any]:
        """RFC 6749 §4.1.3: redeem a code once, for the client and redirect URI it was made for."""
        code_hash = self.keyring.hash_credential(code)
        async with self.sessions() as session:
            row = await q.get_authorization_code(session, code_hash=code_hash)
        if row is None:
            raise TokenError("invalid_grant", "unknown authorization code")
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice revokes what its first use issued.
            await self.families.revoke(row.family_id)
            raise TokenError("invalid_grant", "authorization code already used")
        if not hmac.compare_digest(row.client_id, client.client_id):
            raise TokenError("invalid_grant", "code was issued to another client")  # §4.1.3
        if (redirect_uri or "") != row.redirect_uri:
            raise TokenError("invalid_grant", "redirect_uri differs from the authorization request")
        now = utcnow()
        if now >= row.expires_at:
            raise TokenError("invalid_grant", "authorization code expired")  # §4.1.2, §10.5
        if verifier is None:
            raise TokenError("invalid_request", "code_verifier is required")  # RFC 7636 §4.5
        # RFC 7636 §4.6: the verifier must hash to the challenge sent with the request.
        if not VERIFIER.match(verifier) or not hmac.compare_digest(
            s256(verifier), row.code_challenge
        ):
            raise TokenError("invalid_grant", "PKCE verification failed")
        refresh: str | None = None
        async with self.sessions() as session:
            if not await q.mark_authorization_code_used(session, code_hash=code_hash, now=now):
                await session.rollback()
                await self.families.revoke(row.family_id)  # lost a race with another redemption
                raise TokenError("invalid_grant", "authorization code already used")
            user = await identity_queries.get_user(session, user_id=row.user_id)
            if user is None or user.disabled:
                await session.commit()
                raise TokenError("invalid_grant", "the user may no longer sign in")
            if "offline_access" in row.scope.split():  # OIDC Core §11
                refresh = await self.issue_refresh_token(
                    session,
                    family_id=row.family_id,
                    client_id=row.client_id,
                    scope=row.scope,
                    user_id=row.user_id,
                    key_id=row.key_id,
                    auth_time=row.auth_time,
                    family_expires_at=now
                    + timedelta(seconds=self.settings.refresh_token_absolute_ttl),
                    now=now,
                )
            await session.commit()
        grant = Grant(
            client_id=row.client_id,
            subject=user.public_id,
            key_id=row.key_id,
            family_id=row.family_id,
            scope=row.scope,
            auth_time=_unix(row.auth_time),
            email=user.email,
            name=user.name,
            groups=tuple(user.groups),
            nonce=row.nonce,
        )
        return self._response(grant, refresh)

    async def refresh_token(
        self,
        client: OAuthClient | None,
        *,
        refresh_token: str,
        scope: str | None,
        named_client_id: str | None = None,
    ) -> dict[str, Any]:
        """RFC 6749 §6: rotate the refresh token and mint new tokens, after re-checking the user.

        `client` is the authenticated (or registered public) client, if any; `named_client_id`
        a `client_id` sent without authentication that names no registered public client,
        which only device-flow families accept.
        """
        token_hash = self.keyring.hash_credential(refresh_token)
        async with self.sessions() as session:
            row = await q.get_refresh_token(session, token_hash=token_hash)
            if row is not None and client is None:
                if await q.is_device_family(session, family_id=row.family_id):
                    # RFC 8628 clients are public and need not be registered here: the family
                    # stays bound to the client_id it was issued to (checked below).
                    if named_client_id is not None and named_client_id != row.client_id:
                        raise _refused("refresh token was issued to another client")
                    client = OAuthClient(client_id=row.client_id, public=True)
                elif named_client_id is not None:
                    raise TokenError(
                        "invalid_client", "unknown client, or it must authenticate", status=401
                    )
                else:
                    # A public client may refresh without naming itself; the token says who
                    # it is.
                    client = await identity_queries.get_client(session, client_id=row.client_id)
                    if client is None or not client.public:
                        raise TokenError(
                            "invalid_client", "client authentication required", status=401
                        )
        if row is None or row.id is None:
            raise _refused("unknown refresh token")
        assert client is not None
        if not hmac.compare_digest(row.client_id, client.client_id):
            raise _refused("refresh token was issued to another client")  # §6
        if row.revoked_at is not None or await self.families.is_revoked(row.family_id):
            raise _refused("refresh token revoked")
        if row.used_at is not None:
            # RFC 9700 §4.14.2: a spent refresh token presented again means it leaked.
            await self.families.revoke(row.family_id)
            log.warning("refresh token reuse; family %s revoked", row.family_id)
            raise _refused("refresh token already used; the session was ended")
        now = utcnow()
        if now >= row.expires_at or now >= row.family_expires_at:
            raise _refused("refresh token expired")
        granted = row.scope.split()
        requested = scope.split() if scope else granted
        if not set(requested) <= set(granted):  # §6: no wider than originally granted
            raise TokenError("invalid_scope", "scope exceeds the original grant")
        try:
            recheck = await self.broker.recheck(row.user_id, row.auth_time)
        except Exception as exc:
            log.exception("re-checking user %s failed", row.user_id)
            raise TokenError(
                "temporarily_unavailable", "cannot re-check the user now; try again", status=503
            ) from exc
        identity = recheck.identity
        if recheck.status != "ok" or identity is None or identity.user_id != row.user_id:
            # Deprovisioning reaches a running client here: the session ends.
            await self.families.revoke(row.family_id)
            raise _refused(recheck.reason or "the user may no longer sign in")
        async with self.sessions() as session:
            if not await q.mark_refresh_token_used(session, token_id=row.id, now=now):
                await session.rollback()
                await self.families.revoke(row.family_id)  # a concurrent use won: fork refused
                raise _refused("refresh token already used; the session was ended")
            new_refresh = await self.issue_refresh_token(
                session,
                family_id=row.family_id,
                client_id=row.client_id,
                scope=row.scope,  # §6: the new refresh token keeps the original scope
                user_id=row.user_id,
                key_id=identity.key_id,
                auth_time=row.auth_time,
                family_expires_at=row.family_expires_at,
                now=now,
            )
            # A revocation that raced with this rotation must win (see `Families`).
            revoked = await q.is_family_revoked(session, family_id=row.family_id)
            await session.commit()
        if revoked:
            raise _refused("refresh token revoked")
        grant = Grant(
            client_id=row.client_id,
            subject=identity.public_id,
            key_id=identity.key_id,
            family_id=row.family_id,
            scope=" ".join(requested),
            auth_time=_unix(row.auth_time),  # OIDC Core §12.2: the original authentication
            email=identity.email,
            name=identity.name,
            groups=identity.groups,
        )
        return self._response(grant, new_refresh)

    async def issue_refresh_token(
        self,
        session: AsyncSession,
        *,
        family_id: str,
        client_id: str,
        scope: str,
        user_id: int,
        key_id: int,
        auth_time: datetime,
        family_expires_at: datetime,
        now: datetime,
    ) -> str:
        """A new refresh token of `family_id`, stored hashed; the token itself is returned."""
        token = secrets.token_urlsafe(32)  # 256 bits
        idle = now + timedelta(seconds=self.settings.refresh_token_idle_ttl)
        await q.insert_refresh_token(
            session,
            token=RefreshToken(
                token_hash=self.keyring.hash_credential(token),
                family_id=family_id,
                client_id=client_id,
                scope=scope,
                user_id=user_id,
                key_id=key_id,
                auth_time=auth_time,
                expires_at=min(idle, family_expires_at),
                family_expires_at=family_expires_at,
            ),
        )
        return token

    def _response(self, grant: Grant, refresh_token: str | None) -> dict[str, Any]:
        """RFC 6749 §5.1 and OIDC Core §3.1.3.3: always a new id_token (Desktop needs one)."""
        body: dict[str, Any] = {
            "access_token": self.minter.access_token(grant),
            "token_type": "Bearer",
            "expires_in": self.minter.ttl,
            "id_token": self.minter.id_token(grant),
            "scope": grant.scope,
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body
