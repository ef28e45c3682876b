"""Calls to an IdP's token endpoint: redeeming a code (with PKCE) and refreshing.

Authlib does the protocol (client authentication, the body, the RFC 6749 §5.2 error
grammar); this module decides what its failures mean for us: the IdP being down or slow is
`IdpUnavailable` (try later, or keep a session within the grace period), the IdP saying no
is `TokenRefused` (e.g. `invalid_grant`: the grant is gone, the session ends).
"""

from __future__ import annotations

from typing import Any

import httpx2
from authlib.integrations.base_client import (  # type: ignore[import-untyped, unused-ignore]
    OAuthError,
)

from gatepass.sso.errors import IdpUnavailable, LoginError
from gatepass.sso.http import IdpHttp

UNAVAILABLE_ERRORS = ("temporarily_unavailable", "server_error")  # RFC 6749 §4.1.2.1


class TokenRefused(LoginError):
    """The token endpoint answered with an OAuth error (`error` is its code)."""

    def __init__(self, error: str, detail: str | None = None) -> None:
        super().__init__(
            "token_refused",
            "The identity provider refused to complete the sign-in.",
            detail=f"{error}: {detail or ''}"[:500],
        )
        self.error = error


async def _call(action: str, send: Any) -> dict[str, Any]:
    try:
        token = await send()
    except httpx2.HTTPStatusError as exc:
        status = exc.response.status_code
        if status >= 500 or status == 429:
            raise IdpUnavailable("token_failed", f"{action}: HTTP {status}") from exc
        raise TokenRefused("http_error", f"{action}: HTTP {status}") from exc
    except httpx2.HTTPError as exc:
        raise IdpUnavailable("token_unreachable", f"{action}: {type(exc).__name__}") from exc
    except OAuthError as exc:
        error = str(exc.error or "unknown_error")[:64]
        if error in UNAVAILABLE_ERRORS:
            raise IdpUnavailable("token_failed", f"{action}: {error}") from exc
        raise TokenRefused(error, str(exc.description or "")[:300]) from exc
    except ValueError as exc:  # not a JSON object
        raise LoginError(
            "token_invalid",
            "The identity provider sent a response Gatepass cannot use.",
            detail=f"{action}: {exc}"[:500],
        ) from exc
    return dict(token)


async def redeem_code(
    http: IdpHttp,
    *,
    token_endpoint: str,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> dict[str, Any]:
    """The token response for an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    async with http.oauth_client(
        client_id=client_id, client_secret=client_secret, redirect_uri=redirect_uri
    ) as oauth:
        return await _call(
            "code",
            lambda: oauth.fetch_token(
                token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
            ),
        )


async def refresh(
    http: IdpHttp,
    *,
    token_endpoint: str,
    client_id: str,
    client_secret: str | None,
    refresh_token: str,
) -> dict[str, Any]:
    """The token response for a refresh (RFC 6749 §6)."""
    async with http.oauth_client(client_id=client_id, client_secret=client_secret) as oauth:
        return await _call(
            "refresh",
            lambda: oauth.refresh_token(token_endpoint, refresh_token=refresh_token),
        )
