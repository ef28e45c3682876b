"""RP-Initiated Logout 1.0: end the provider session, then return to a registered URI."""

from __future__ import annotations

from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import Response

from idp_dev.errors import redirect_with
from idp_dev.pages import error_page, page
from idp_dev.provider import Provider
from idp_dev.redirects import post_logout_uri_allowed
from idp_dev.sessions import end_session


@dataclass
class EndSession:
    provider: Provider

    async def handle(self, request: Request) -> Response:
        params: dict[str, str]
        if request.method == "POST":
            params = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        else:
            params = dict(request.query_params)
        client_id = params.get("client_id") or self._audience(params.get("id_token_hint"))
        target = params.get("post_logout_redirect_uri")
        response: Response
        if target is None:
            response = page("logged_out.html")
        else:
            client = self.provider.clients.get(client_id or "")
            if client is None or not post_logout_uri_allowed(client, target):
                return error_page(
                    "Invalid post_logout_redirect_uri",
                    "It is not registered for this client (or the client is unknown).",
                )
            response = redirect_with(target, {"state": params.get("state")})
        end_session(self.provider, request, response)
        return response

    def _audience(self, id_token_hint: str | None) -> str | None:
        """The client an ID token we issued was for; expiry does not matter for a hint."""
        if not id_token_hint:
            return None
        try:
            token = jwt.decode(
                id_token_hint, self.provider.keys.public_key_set(), algorithms=["RS256", "ES256"]
            )
        except (JoseError, ValueError):
            return None
        if token.claims.get("iss") != self.provider.issuer:
            return None
        aud = token.claims.get("aud")
        if isinstance(aud, list):
            aud = token.claims.get("azp") or (aud[0] if aud else None)
        return aud if isinstance(aud, str) else None
