"""`/oauth/userinfo` (OIDC Core §5.3): who the bearer of a Gatepass access token is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gatepass.oauth.errors import json_response
from gatepass.oauth.families import Families
from gatepass.oauth.tokens import KEY_ID_CLAIM, TokenClaims
from gatepass.store import identity_queries
from gatepass.store.db import SessionMaker


def _invalid_token(description: str) -> Response:
    # RFC 6750 §3.1: the challenge names the error.
    challenge = f'Bearer realm="gatepass", error="invalid_token", error_description="{description}"'
    body = {"error": "invalid_token", "error_description": description}
    return json_response(body, 401, {"www-authenticate": challenge})


@dataclass
class UserinfoEndpoint:
    sessions: SessionMaker
    verify: Callable[[str], Awaitable[TokenClaims | None]]
    families: Families

    async def handle(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return json_response(
                {
                    "error": "invalid_request",
                    "error_description": "a bearer access token is required",
                },
                401,
                {"www-authenticate": 'Bearer realm="gatepass"'},  # RFC 6750 §3.1: no error code
            )
        claims = await self.verify(token.strip())
        # OIDC Core §5.3: the access token, not the id_token, is what userinfo accepts.
        if claims is None or claims.token_use != "access":
            return _invalid_token("the access token is invalid or expired")
        if await self.families.is_revoked(claims.family_id):
            return _invalid_token("the session was ended")
        async with self.sessions() as session:
            user = await identity_queries.get_user_by_public_id(session, public_id=claims.subject)
        if user is None or user.disabled:
            return _invalid_token("the user may no longer sign in")
        scopes = claims.scope.split()
        body: dict[str, Any] = {
            "sub": user.public_id,
            "groups": list(user.groups),
            KEY_ID_CLAIM: claims.key_id,
        }
        if "email" in scopes and user.email is not None:
            body["email"] = user.email
        if "profile" in scopes and user.name is not None:
            body["name"] = user.name
        return json_response(body)
