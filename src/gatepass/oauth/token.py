"""`POST /oauth/token` (RFC 6749 §3.2): parse, authenticate the client, run the grant.

Requests are form-encoded; unknown parameters are ignored (§3.2); answers and errors carry
`Cache-Control: no-store` (§5.1, §5.2). The grants themselves live in `grants.py` and
`device_grant.py`. The device grant takes no client authentication: its clients are public,
need not be registered, and may omit `client_id` (the Claude apps gateway protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gatepass.crypto import Keyring
from gatepass.oauth.clients import authenticate, read_credentials, single
from gatepass.oauth.device import DEVICE_GRANT
from gatepass.oauth.device_grant import DeviceGrant
from gatepass.oauth.errors import TokenError, json_response
from gatepass.oauth.grants import Grants
from gatepass.store.db import SessionMaker

MAX_FIELD = 4096  # characters; codes, tokens and verifiers are far shorter


class _TokenRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AuthorizationCodeRequest(_TokenRequest):
    """RFC 6749 §4.1.3 with RFC 7636 §4.5."""

    grant_type: Literal["authorization_code"]
    code: Annotated[str, Field(min_length=1, max_length=MAX_FIELD)]
    redirect_uri: Annotated[str | None, Field(max_length=MAX_FIELD)] = None
    code_verifier: Annotated[str | None, Field(max_length=MAX_FIELD)] = None


class RefreshTokenRequest(_TokenRequest):
    """RFC 6749 §6."""

    grant_type: Literal["refresh_token"]
    refresh_token: Annotated[str, Field(min_length=1, max_length=MAX_FIELD)]
    scope: Annotated[str | None, Field(max_length=MAX_FIELD)] = None


class DeviceCodeRequest(_TokenRequest):
    """RFC 8628 §3.4."""

    grant_type: Literal["urn:ietf:params:oauth:grant-type:device_code"]
    device_code: Annotated[str, Field(min_length=1, max_length=MAX_FIELD)]


AnyTokenRequest = AuthorizationCodeRequest | RefreshTokenRequest | DeviceCodeRequest
TokenRequest = Annotated[AnyTokenRequest, Field(discriminator="grant_type")]
_token_request: TypeAdapter[AnyTokenRequest] = TypeAdapter(TokenRequest)
FIELDS = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "device_code",
)
GRANT_TYPES = ("authorization_code", "refresh_token", DEVICE_GRANT)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"][1:]) or "request"
    return f"{where}: {first['msg']}"


@dataclass
class TokenEndpoint:
    sessions: SessionMaker
    keyring: Keyring
    grants: Grants
    device: DeviceGrant

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except TokenError as exc:
            return exc.response()

    async def _handle(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":  # RFC 6749 §3.2
            raise TokenError(
                "invalid_request", "the body must be application/x-www-form-urlencoded"
            )
        form = await request.form()
        values = {name: single(form, name) for name in FIELDS}
        grant_type = values["grant_type"]
        if grant_type is None:
            raise TokenError("invalid_request", "grant_type is missing")
        if grant_type not in GRANT_TYPES:
            raise TokenError(
                "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
            )
        try:
            parsed = _token_request.validate_python(
                {k: v for k, v in values.items() if v is not None}
            )
        except ValidationError as exc:
            raise TokenError("invalid_request", _describe(exc)) from exc
        credentials = read_credentials(request, form)
        if isinstance(parsed, DeviceCodeRequest):
            body = await self.device.poll(
                device_code=parsed.device_code, client_id=credentials.client_id
            )
            return json_response(body)
        named: str | None = None
        try:
            client = await authenticate(self.sessions, self.keyring, credentials)
        except TokenError:
            if not isinstance(parsed, RefreshTokenRequest) or credentials.method != "none":
                raise
            # Perhaps a device-flow client naming itself: unregistered, yet public. The
            # refresh grant accepts that only for a family the device flow issued.
            client, named = None, credentials.client_id
        if isinstance(parsed, AuthorizationCodeRequest):
            if client is None:  # RFC 6749 §4.1.3: a public client must send its client_id
                raise TokenError("invalid_request", "client_id is required")
            body = await self.grants.authorization_code(
                client,
                code=parsed.code,
                redirect_uri=parsed.redirect_uri,
                verifier=parsed.code_verifier,
            )
        else:
            body = await self.grants.refresh_token(
                client,
                refresh_token=parsed.refresh_token,
                scope=parsed.scope,
                named_client_id=named,
            )
        return json_response(body)
