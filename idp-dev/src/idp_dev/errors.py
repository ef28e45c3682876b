"""RFC 6749 error responses: the one place that speaks Authlib's error grammar.

Authlib's error classes are untyped; they stay behind `OAuthProblem` and the two renderers
below so the rest of the package sees only typed values.
"""

from __future__ import annotations

from typing import Literal

from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped, unused-ignore]
from authlib.oauth2.base import OAuth2Error  # type: ignore[import-untyped, unused-ignore]
from authlib.oauth2.rfc6749.errors import (  # type: ignore[import-untyped, unused-ignore]
    InvalidClientError,
)
from starlette.responses import JSONResponse, RedirectResponse, Response

ErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_response_type",
    "invalid_scope",
    "access_denied",
    "login_required",
    "consent_required",
    "invalid_token",
    "temporarily_unavailable",
]


class OAuthProblem(Exception):
    """An error the token, revocation or authorization endpoint reports to the client."""

    def __init__(
        self, error: ErrorCode, description: str, *, status: int = 400, basic: bool = False
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.basic = basic  # the client used HTTP Basic: RFC 6749 §5.2 wants 401 + challenge


def json_error(problem: OAuthProblem) -> Response:
    """RFC 6749 §5.2 JSON error with `Cache-Control: no-store`."""
    if problem.error == "invalid_client" and problem.basic:
        err = InvalidClientError(description=problem.description, status_code=401)
    else:
        err = OAuth2Error(
            description=problem.description, status_code=problem.status, error=problem.error
        )
    body = dict(err.get_body())
    headers = {k: v for k, v in err.get_headers() if k.lower() != "content-type"}
    return JSONResponse(body, status_code=int(err.status_code), headers=headers)


def redirect_with(redirect_uri: str, params: dict[str, str | None]) -> Response:
    """A 302 to the client's redirect URI with query parameters (RFC 6749 §4.1.2)."""
    pairs = [(k, v) for k, v in params.items() if v is not None]
    location = str(add_params_to_uri(redirect_uri, pairs))
    return RedirectResponse(location, status_code=302, headers=NO_STORE)


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
