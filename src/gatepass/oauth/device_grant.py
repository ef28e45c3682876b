"""The token endpoint's device grant (RFC 8628 §3.4-3.5, the Claude apps gateway protocol).

A poll answers, in this order of checks:
- unknown `device_code`, one bound to another `client_id`, or one already redeemed:
  `invalid_grant` (400);
- past its lifetime: `expired_token` (400), whatever was decided;
- denied: `access_denied` (400);
- pending: `slow_down` (400) when polled faster than its interval, which then grows by 5 s
  (§3.5), else `authorization_pending` (400);
- approved: tokens, exactly once (a conditional UPDATE decides who redeems, see
  `store.oauth_queries.consume_device_authorization`).

`slow_down` is a 400 like the other polling errors (RFC 8628 §3.5 defines it as one of the
§5.2 errors); the protocol's table allows 400 or 429 and clients add 5 s either way. The 429
is kept for the device authorization endpoint's per-address limit.

Tokens are minted like the authorization-code grant's (a new family, an access token for
`{issuer}/anthropic`, a rotating refresh token) so the proxy, `/oauth/revoke` and the refresh
grant accept them. The answer carries `email` (the protocol's extension) and no id_token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gatepass.crypto import Keyring
from gatepass.oauth.device import token_client_id
from gatepass.oauth.errors import TokenError
from gatepass.oauth.grants import Grants
from gatepass.oauth.tokens import Grant, TokenMinter
from gatepass.store import identity_queries
from gatepass.store import oauth_queries as q
from gatepass.store.db import SessionMaker
from gatepass.store.types import utcnow

SLOW_DOWN_STEP = 5  # seconds added to the interval on each slow_down (RFC 8628 §3.5)
MAX_INTERVAL = 60  # seconds; the interval stops growing here
# A client keeping to its interval can still have two polls land closer together (network
# jitter), so "too fast" allows this fraction of the interval, at most one second.
POLL_LEEWAY = 0.2
DEVICE_SCOPE = "openid profile email offline_access"  # what a device-flow sign-in grants


def polled_too_fast(last_polled_at: datetime | None, interval: int, now: datetime) -> bool:
    if last_polled_at is None:
        return False
    leeway = min(1.0, interval * POLL_LEEWAY)
    return (now - last_polled_at).total_seconds() < interval - leeway


@dataclass
class DeviceGrant:
    sessions: SessionMaker
    keyring: Keyring
    minter: TokenMinter
    grants: Grants  # for refresh tokens and lifetimes shared with the other grants
    clock: Callable[[], datetime] = field(default=utcnow)

    async def poll(self, *, device_code: str, client_id: str | None) -> dict[str, Any]:
        """RFC 8628 §3.4: one poll of the token endpoint."""
        now = self.clock()
        code_hash = self.keyring.hash_credential(device_code)
        async with self.sessions() as session:
            row = await q.get_device_authorization(session, device_code_hash=code_hash)
            if row is None or row.id is None:
                raise TokenError("invalid_grant", "unknown device_code")
            if (
                client_id is not None
                and row.client_id is not None
                and not hmac.compare_digest(client_id, row.client_id)
            ):
                # RFC 8628 §3.4: the code is redeemed by the client it was issued to.
                raise TokenError("invalid_grant", "device_code was issued to another client")
            if row.status == "consumed":
                raise TokenError("invalid_grant", "device_code already used")
            if now >= row.expires_at:
                raise TokenError("expired_token", "the device code expired; start again")
            if row.status == "denied":
                raise TokenError("access_denied", "the user denied the request")
            if row.status != "approved":
                too_fast = polled_too_fast(row.last_polled_at, row.poll_interval, now)
                interval = row.poll_interval
                if too_fast:
                    interval = min(row.poll_interval + SLOW_DOWN_STEP, MAX_INTERVAL)
                await q.record_device_poll(
                    session, authorization_id=row.id, now=now, interval=interval
                )
                await session.commit()
                if too_fast:
                    raise TokenError(
                        "slow_down", f"polling too fast; wait {interval} seconds between polls"
                    )
                raise TokenError("authorization_pending", "the user has not approved yet")
            assert row.user_id is not None
            assert row.key_id is not None
            assert row.auth_time is not None
            family_id = secrets.token_urlsafe(24)
            if not await q.consume_device_authorization(
                session, authorization_id=row.id, family_id=family_id, now=now
            ):
                await session.rollback()  # a concurrent poll redeemed it first
                raise TokenError("invalid_grant", "device_code already used")
            user = await identity_queries.get_user(session, user_id=row.user_id)
            if user is None or user.disabled:
                await session.commit()  # spent either way
                raise TokenError("invalid_grant", "the user may no longer sign in")
            client = token_client_id(row)
            absolute = self.grants.settings.refresh_token_absolute_ttl
            refresh = await self.grants.issue_refresh_token(
                session,
                family_id=family_id,
                client_id=client,
                scope=DEVICE_SCOPE,
                user_id=row.user_id,
                key_id=row.key_id,
                auth_time=row.auth_time,
                family_expires_at=now + timedelta(seconds=absolute),
                now=now,
            )
            await session.commit()
        grant = Grant(
            client_id=client,
            subject=user.public_id,
            key_id=row.key_id,
            family_id=family_id,
            scope=DEVICE_SCOPE,
            auth_time=int(row.auth_time.timestamp()),
            email=user.email,
            name=user.name,
            groups=tuple(user.groups),
        )
        body: dict[str, Any] = {
            "access_token": self.minter.access_token(grant),
            "token_type": "Bearer",
            "expires_in": self.minter.ttl,
            "refresh_token": refresh,
            "scope": DEVICE_SCOPE,
        }
        if user.email:
            body["email"] = user.email  # the protocol's extension: who approved
        return body
