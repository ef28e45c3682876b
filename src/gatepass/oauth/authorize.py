"""`/oauth/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2, PKCE RFC 7636) and what happens when
the user comes back signed in: a one-time code, delivered from a page on Gatepass's origin.

Errors about the client or its redirect URI are shown on an error page and never redirected
(RFC 6749 §4.1.2.1): the URI is not trusted yet. Every later error goes back to the client
with `error`, `state` and `iss` (RFC 9207).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gatepass.crypto import Keyring
from gatepass.identity import LoginBroker, ReturnTo, SignedIn
from gatepass.oauth.errors import AuthorizeError, with_query
from gatepass.oauth.metadata import SCOPES
from gatepass.oauth.redirects import match_redirect_uri
from gatepass.oauth.tokens import resource_audience
from gatepass.store import identity_queries
from gatepass.store import oauth_queries as q
from gatepass.store.db import SessionMaker
from gatepass.store.oauth import AuthorizationCode, OAuthClient
from gatepass.store.types import utcnow
from gatepass.web import page

S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # BASE64URL(SHA256(verifier)), RFC 7636 §4.2
MAX_NONCE = 500  # characters (the column's width)
MAX_STATE = 2000  # characters


class PendingAuthorization(BaseModel):
    """The authorization request, kept by the relying party while the user signs in."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    client_id: str
    redirect_uri: str | None  # as sent; None when the client relied on its only one
    code_challenge: str
    scope: str
    nonce: str | None
    state: str | None


class _Refused(Exception):
    """The request cannot be answered by redirect: client or redirect URI not trusted."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def refusal_page(message: str, status: int = 400) -> Response:
    return page(
        "message.html",
        {"title": "Sign-in request refused", "message": message, "error": True},
        status=status,
    )


def _one(params: QueryParams | FormData, name: str) -> str | None:
    """RFC 6749 §3.1: parameters must not repeat; empty ones count as absent."""
    values = params.getlist(name)
    if len(values) > 1:
        raise AuthorizeError("invalid_request", f"{name} given more than once")
    value = values[0] if values else None
    if value is not None and not isinstance(value, str):
        raise AuthorizeError("invalid_request", f"{name} must be a plain field")
    return value or None


@dataclass
class AuthorizeEndpoint:
    sessions: SessionMaker
    broker: LoginBroker
    issuer: str

    async def handle(self, request: Request) -> Response:
        params: QueryParams | FormData
        params = await request.form() if request.method == "POST" else request.query_params
        try:
            client, target = await self._client_and_redirect(params)
        except (_Refused, AuthorizeError) as exc:
            message = exc.message if isinstance(exc, _Refused) else exc.description
            return refusal_page(message)
        state = None
        try:
            state = _one(params, "state")
            if state is not None and len(state) > MAX_STATE:
                state = None
                raise AuthorizeError("invalid_request", "state is too long")
            pending = self._validate(params, client, state)
        except AuthorizeError as exc:
            location = with_query(
                target,
                {
                    "error": exc.error,
                    "error_description": exc.description,
                    "state": state,
                    "iss": self.issuer,  # RFC 9207 §2
                },
            )
            return RedirectResponse(
                location, status_code=302, headers={"cache-control": "no-store"}
            )
        login_hint = params.get("login_hint")
        return await self.broker.begin(
            request,
            purpose="authorize",
            payload=pending.model_dump(),
            login_hint=login_hint if isinstance(login_hint, str) and login_hint else None,
        )

    async def _client_and_redirect(self, params: QueryParams | FormData) -> tuple[OAuthClient, str]:
        client_id = _one(params, "client_id")
        if client_id is None:
            raise _Refused("The request names no client (client_id is missing).")
        async with self.sessions() as session:
            client = await identity_queries.get_client(session, client_id=client_id)
        if client is None:
            raise _Refused("The application asking you to sign in is not registered here.")
        # RFC 6749 §3.1.2.3 and RFC 8252 §7.3: exact match, any port on a loopback IP.
        target = match_redirect_uri(_one(params, "redirect_uri"), client.redirect_uris)
        if target is None:
            raise _Refused("The application's redirect URI is not registered for it.")
        return client, target

    def _validate(
        self, params: QueryParams | FormData, client: OAuthClient, state: str | None
    ) -> PendingAuthorization:
        # OIDC Core §6: request objects are not supported, say so rather than ignore them.
        if _one(params, "request") is not None:
            raise AuthorizeError("request_not_supported", "request objects are not supported")
        if _one(params, "request_uri") is not None:
            raise AuthorizeError("request_uri_not_supported", "request_uri is not supported")
        response_type = _one(params, "response_type")
        if response_type is None:
            raise AuthorizeError("invalid_request", "response_type is missing")
        if response_type != "code":  # RFC 6749 §4.1.1; OAuth 2.1 drops the implicit grant
            raise AuthorizeError(
                "unsupported_response_type", "only response_type=code is supported"
            )
        response_mode = _one(params, "response_mode")
        if response_mode not in (None, "query"):
            raise AuthorizeError("invalid_request", "only response_mode=query is supported")
        requested = (_one(params, "scope") or "").split()
        if "openid" not in requested:  # OIDC Core §3.1.2.1
            raise AuthorizeError("invalid_scope", "scope must include openid")
        # RFC 6749 §3.3: unknown scopes are left out of the grant rather than refused.
        scope = " ".join(s for s in dict.fromkeys(requested) if s in SCOPES)
        # RFC 7636 §4.4.1 and RFC 9700 §2.1.1: PKCE required, S256 only (a missing method
        # means plain, §4.3).
        method = _one(params, "code_challenge_method")
        challenge = _one(params, "code_challenge")
        if challenge is None:
            raise AuthorizeError("invalid_request", "code_challenge is required (PKCE)")
        if method != "S256":
            raise AuthorizeError("invalid_request", "code_challenge_method must be S256")
        if not S256_CHALLENGE.match(challenge):
            raise AuthorizeError("invalid_request", "code_challenge is not a valid S256 challenge")
        nonce = _one(params, "nonce")
        if nonce is not None and len(nonce) > MAX_NONCE:
            raise AuthorizeError("invalid_request", "nonce is too long")
        # RFC 8707 §2: the only resource we issue tokens for is the API we front.
        for resource in params.getlist("resource"):
            if str(resource).rstrip("/") not in (resource_audience(self.issuer), self.issuer):
                raise AuthorizeError("invalid_target", "unknown resource")
        # OIDC Core §3.1.2.6: no session of our own to use silently, the user must sign in.
        if "none" in (_one(params, "prompt") or "").split():
            raise AuthorizeError("login_required", "signing in needs the user")
        return PendingAuthorization(
            client_id=client.client_id,
            redirect_uri=_one(params, "redirect_uri"),
            code_challenge=challenge,
            scope=scope,
            nonce=nonce,
            state=state,
        )


@dataclass
class AuthorizeCompletion:
    """Registered with the broker for purpose "authorize": issue the code, return to the app."""

    sessions: SessionMaker
    keyring: Keyring
    issuer: str
    code_ttl: int  # seconds

    async def way_back(
        self, payload: dict[str, Any], denied: bool, description: str
    ) -> ReturnTo | None:
        """After a failed sign-in: the client's redirect with an error (RFC 6749 §4.1.2.1)."""
        pending = PendingAuthorization.model_validate(payload)
        async with self.sessions() as session:
            client = await identity_queries.get_client(session, client_id=pending.client_id)
        target = (
            None
            if client is None
            else match_redirect_uri(pending.redirect_uri, client.redirect_uris)
        )
        if client is None or target is None:
            return None
        query = {
            "error": "access_denied" if denied else "server_error",
            "error_description": description,
            "state": pending.state,
            "iss": self.issuer,  # RFC 9207 §2
        }
        return ReturnTo(with_query(target, query), client.name or client.client_id)

    async def __call__(
        self, request: Request, payload: dict[str, Any], signed_in: SignedIn
    ) -> Response:
        pending = PendingAuthorization.model_validate(payload)
        async with self.sessions() as session:
            client = await identity_queries.get_client(session, client_id=pending.client_id)
            # The client may have been removed or changed while the user was signing in.
            target = None
            if client is not None:
                target = match_redirect_uri(pending.redirect_uri, client.redirect_uris)
            if client is None or target is None:
                return refusal_page(
                    "The application you were signing in to is no longer registered."
                )
            code = secrets.token_urlsafe(32)  # 256 bits (RFC 6749 §10.10)
            now = utcnow()
            await q.insert_authorization_code(
                session,
                code=AuthorizationCode(
                    code_hash=self.keyring.hash_credential(code),
                    client_id=client.client_id,
                    redirect_uri=pending.redirect_uri or "",
                    code_challenge=pending.code_challenge,
                    scope=pending.scope,
                    nonce=pending.nonce,
                    user_id=signed_in.user_id,
                    key_id=signed_in.key_id,
                    family_id=secrets.token_urlsafe(24),
                    auth_time=signed_in.auth_time,
                    expires_at=now + timedelta(seconds=self.code_ttl),
                ),
            )
            await session.commit()
        location = with_query(target, {"code": code, "state": pending.state, "iss": self.issuer})
        return page(
            "oauth/continue.html",
            {
                "target": location,
                "client_name": client.name or client.client_id,
                "email": signed_in.email,
            },
            referrer_policy="origin",
        )
