"""The `/oauth` error surface: RFC 6749 error codes as `Literal` types and one renderer each
for JSON (token, revoke, userinfo) and for redirects back to the client (authorize).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from starlette.responses import Response

# RFC 6749 §5.2 (token endpoint), RFC 7009 §2.2.1 (revocation), RFC 8628 §3.5 (device grant)
TokenErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_token_type",
    "invalid_scope",
    "temporarily_unavailable",
    # RFC 8628 §3.5 (device grant)
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
]

# RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, RFC 8707 §2
AuthorizeErrorCode = Literal[
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "login_required",
    "request_not_supported",
    "request_uri_not_supported",
    "invalid_target",
]

# Token responses and errors must never be cached (RFC 6749 §5.1, §5.2).
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """JSON with `Cache-Control: no-store`, as every `/oauth` JSON answer is."""
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


class TokenError(Exception):
    """An RFC 6749 §5.2 error answer from the token, revocation or userinfo endpoint."""

    def __init__(
        self,
        error: TokenErrorCode,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"error": self.error, "error_description": self.description}
        return json_response(body, self.status, self.headers)


class AuthorizeError(Exception):
    """An error sent back to the client's redirect URI (RFC 6749 §4.1.2.1, RFC 9207)."""

    def __init__(self, error: AuthorizeErrorCode, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


def with_query(uri: str, params: dict[str, str | None]) -> str:
    """`uri` with `params` appended to its query, keeping what it already had (RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))
