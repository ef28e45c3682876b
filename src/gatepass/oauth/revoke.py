"""`/oauth/revoke` (RFC 7009): end a sign-in session from a refresh token or a Gatepass JWT.

Either kind revokes the token's whole family: the refresh tokens at the token endpoint, and
every JWT carrying the family as `sid` at the proxy. Unknown or already invalid tokens get
200 too (RFC 7009 §2.2), so the endpoint reveals nothing about what it was given.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from gatepass.crypto import Keyring
from gatepass.oauth.clients import authenticate, read_credentials, single
from gatepass.oauth.errors import NO_STORE, TokenError
from gatepass.oauth.families import Families
from gatepass.oauth.tokens import TokenClaims
from gatepass.store import oauth_queries as q
from gatepass.store.db import SessionMaker


@dataclass
class RevokeEndpoint:
    sessions: SessionMaker
    keyring: Keyring
    families: Families
    verify: Callable[[str], Awaitable[TokenClaims | None]]

    async def handle(self, request: Request) -> Response:
        try:
            await self._revoke(request)
        except TokenError as exc:
            return exc.response()
        return Response(status_code=200, headers=NO_STORE)

    async def _revoke(self, request: Request) -> None:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":  # RFC 7009 §2.1
            raise TokenError(
                "invalid_request", "the body must be application/x-www-form-urlencoded"
            )
        form = await request.form()
        token = single(form, "token")
        if token is None:
            raise TokenError("invalid_request", "token is missing")
        # RFC 7009 §2.1: authenticate confidential clients; public ones (and Claude Code,
        # which sends nothing) may revoke with a client_id or no client at all.
        client = await authenticate(self.sessions, self.keyring, read_credentials(request, form))
        # The hint only orders the lookups (§2.1); both kinds are always tried.
        family_id, owner = await self._refresh_family(token)
        if family_id is None:
            claims = await self.verify(token)
            if claims is not None:
                family_id, owner = claims.family_id, claims.client_id
        if family_id is None:
            return
        if (
            client is not None
            and owner is not None
            and not hmac.compare_digest(owner, client.client_id)
        ):
            # §2.1: a client may revoke only its own tokens.
            raise TokenError("unauthorized_client", "the token was issued to another client")
        await self.families.revoke(family_id)

    async def _refresh_family(self, token: str) -> tuple[str | None, str | None]:
        if token.count(".") == 2:
            return None, None  # a JWT, not one of our opaque refresh tokens
        async with self.sessions() as session:
            row = await q.get_refresh_token(session, token_hash=self.keyring.hash_credential(token))
        return (row.family_id, row.client_id) if row is not None else (None, None)
