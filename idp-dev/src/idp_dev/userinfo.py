"""UserInfo (OIDC Core §5.3) and the Entra-style group overage source, both behind a bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp_dev.claims import all_groups, userinfo_claims
from idp_dev.config import User
from idp_dev.grants import AccessToken
from idp_dev.provider import Provider


def _unauthorized(description: str) -> Response:
    # RFC 6750 §3: the challenge names the error.
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return JSONResponse(
        {"error": "invalid_token", "error_description": description},
        status_code=401,
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )


@dataclass
class UserInfo:
    provider: Provider

    def _authorize(self, request: Request) -> tuple[AccessToken, User] | Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("bearer token required")
        with self.provider.lock:
            record = self.provider.grants.live_access_token(
                token.strip(), self.provider.clock.now()
            )
            user = self.provider.users.get(record.sub) if record else None
        if record is None:
            return _unauthorized("unknown, expired or revoked access token")
        if user is None or user.disabled:
            return _unauthorized("user is disabled")
        return record, user

    async def userinfo(self, request: Request) -> Response:
        found = self._authorize(request)
        if isinstance(found, Response):
            return found
        record, user = found
        claims = userinfo_claims(self.provider, user, record.scopes, self.provider.switches)
        return JSONResponse(claims, headers={"Cache-Control": "no-store"})

    async def groups(self, request: Request) -> Response:
        """Where `_claim_sources` points under `groups_overage`: the full list, Graph-shaped."""
        found = self._authorize(request)
        if isinstance(found, Response):
            return found
        _, user = found
        if request.path_params["sub"] != user.sub:
            return JSONResponse({"error": "forbidden"}, status_code=403)
        groups = all_groups(user, self.provider.switches)
        return JSONResponse({"value": groups}, headers={"Cache-Control": "no-store"})
