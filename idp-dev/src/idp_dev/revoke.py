"""Token revocation (RFC 7009): revoking a refresh token ends its whole family."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from idp_dev.client_auth import authenticate_client, single
from idp_dev.errors import NO_STORE, OAuthProblem, json_error
from idp_dev.grants import digest
from idp_dev.provider import Provider


@dataclass
class Revocation:
    provider: Provider

    async def handle(self, request: Request) -> Response:
        try:
            form = await request.form()
            client = authenticate_client(self.provider, request, form)
            token = single(form, "token")
            if token is None:
                raise OAuthProblem("invalid_request", "token is required")
        except OAuthProblem as problem:
            return json_error(problem)
        key = digest(token)
        grants = self.provider.grants
        with self.provider.lock:
            refresh = grants.refresh_tokens.get(key)
            access = grants.access_tokens.get(key)
            family_id = refresh.family if refresh else access.family if access else None
            family = grants.families.get(family_id) if family_id else None
            # RFC 7009 §2.1: only the client the token was issued to may revoke it.
            if family is not None and family.client_id == client.client_id:
                if refresh is not None:
                    grants.revoke_family(family.fid)
                else:
                    grants.access_tokens.pop(key, None)
        # §2.2: 200 whether or not the token was known.
        return Response(status_code=200, headers=NO_STORE)
