"""Authorization endpoint, sign-in form and consent step (RFC 6749 §4.1, OIDC Core §3.1.2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from idp_dev.config import Client
from idp_dev.errors import ErrorCode, redirect_with
from idp_dev.grants import AuthorizationCode, PendingAuthorization, Session, digest, new_secret
from idp_dev.pages import error_page, page
from idp_dev.provider import Provider
from idp_dev.redirects import redirect_uri_allowed
from idp_dev.sessions import current_session, set_cookie, start_session
from idp_dev.switches import WRONG_ISSUER

SUPPORTED_SCOPES = ("openid", "profile", "email", "groups", "offline_access")
PENDING_TTL = 600  # seconds a sign-in form stays usable
# RFC 7636 §4.2: 43 to 128 characters from the unreserved set.
CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


class AuthorizationError(Exception):
    """An error reported to the client by redirect, once its redirect URI is trusted."""

    def __init__(self, error: ErrorCode | str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass
class Authorization:
    """Serves `/authorize`, `/login` and `/consent`."""

    provider: Provider

    async def authorize(self, request: Request) -> Response:
        params: Mapping[str, str]
        if request.method == "POST":
            params = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        else:
            params = request.query_params
        client = self.provider.clients.get(params.get("client_id", ""))
        if client is None:
            return error_page("Unknown client", "The client_id is missing or not registered.")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri_allowed(client, redirect_uri):
            # RFC 6749 §4.1.2.1: never redirect to an unverified URI.
            return error_page("Invalid redirect_uri", "The redirect_uri is not registered.")
        state = params.get("state")
        try:
            pending = self._validate(client, redirect_uri, params)
        except AuthorizationError as invalid:
            return self._error_redirect(redirect_uri, state, invalid)
        prompts = set(params.get("prompt", "").split())
        session = current_session(self.provider, request)
        if session is not None and not self._session_fits(session, prompts, params):
            session = None
        if session is None:
            if "none" in prompts:
                err = AuthorizationError("login_required", "no session and prompt=none")
                return self._error_redirect(redirect_uri, state, err)
            return self._login_form(pending)
        return self._after_login(pending, session, client, prompts)

    async def login(self, request: Request) -> Response:
        form = await request.form()
        pending = self._pending(str(form.get("rid", "")))
        if pending is None:
            return error_page("Sign-in expired", "Start again from the application.")
        login, password = str(form.get("login", "")), str(form.get("password", ""))
        user = self.provider.authenticate(login, password)
        if user is None:
            return self._login_form(pending, login, "Wrong email or password.", status_code=401)
        session = start_session(self.provider, user.sub)
        client = self.provider.clients[pending.client_id]
        response = self._after_login(pending, session, client, set(), status_code=303)
        set_cookie(self.provider, response, session)
        return response

    async def consent(self, request: Request) -> Response:
        form = await request.form()
        pending = self._pending(str(form.get("rid", "")))
        session = current_session(self.provider, request)
        if pending is None or session is None:
            return error_page("Consent expired", "Start again from the application.")
        with self.provider.lock:
            self.provider.grants.pending.pop(pending.rid, None)
        if form.get("decision") != "approve":
            err = AuthorizationError("access_denied", "the user declined")
            return self._error_redirect(pending.redirect_uri, pending.state, err, 303)
        with self.provider.lock:
            session.consents.add(pending.client_id)
        return self._issue_code(pending, session, 303)

    # -- steps ------------------------------------------------------------------------------

    def _validate(
        self, client: Client, redirect_uri: str, params: Mapping[str, str]
    ) -> PendingAuthorization:
        callback_error = self.provider.switches.callback_error
        if callback_error is not None:
            raise AuthorizationError(callback_error, "idp-dev callback_error switch")
        if params.get("response_type") != "code":
            raise AuthorizationError("unsupported_response_type", "only response_type=code")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method", "plain" if challenge else None)
        if challenge is None:
            if client.require_pkce:
                raise AuthorizationError("invalid_request", "code_challenge is required (PKCE)")
        elif method not in ("S256", "plain") or not CHALLENGE.match(challenge):
            raise AuthorizationError("invalid_request", "malformed code_challenge")
        elif method == "plain" and client.require_pkce:
            # RFC 9700 §2.1.1: only S256 when PKCE is mandatory.
            raise AuthorizationError("invalid_request", "code_challenge_method plain refused")
        scopes = tuple(s for s in params.get("scope", "").split() if s in SUPPORTED_SCOPES)
        return PendingAuthorization(
            rid=new_secret(),
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scopes=tuple(dict.fromkeys(scopes)),
            state=params.get("state"),
            nonce=params.get("nonce"),
            code_challenge=challenge,
            code_challenge_method=method if challenge else None,
            login_hint=params.get("login_hint", ""),
            expires=self.provider.clock.now() + PENDING_TTL,
        )

    def _session_fits(self, session: Session, prompts: set[str], params: Mapping[str, str]) -> bool:
        if "login" in prompts:
            return False
        max_age = params.get("max_age", "")
        if max_age.isdigit():
            return self.provider.clock.now() - session.auth_time <= int(max_age)
        return True

    def _after_login(
        self,
        pending: PendingAuthorization,
        session: Session,
        client: Client,
        prompts: set[str],
        status_code: int = 302,
    ) -> Response:
        needs_consent = client.require_consent and (
            "consent" in prompts or client.client_id not in session.consents
        )
        if not needs_consent:
            with self.provider.lock:
                self.provider.grants.pending.pop(pending.rid, None)
            return self._issue_code(pending, session, status_code)
        if "none" in prompts:
            err = AuthorizationError("consent_required", "consent needed and prompt=none")
            return self._error_redirect(pending.redirect_uri, pending.state, err, status_code)
        with self.provider.lock:
            self.provider.grants.pending[pending.rid] = pending
        user = self.provider.users[session.sub]
        return page(
            "consent.html",
            client_id=client.client_id,
            email=user.email,
            scopes=pending.scopes,
            rid=pending.rid,
            action="/consent",
        )

    def _login_form(
        self,
        pending: PendingAuthorization,
        login: str | None = None,
        error: str | None = None,
        status_code: int = 200,
    ) -> Response:
        with self.provider.lock:
            self.provider.grants.pending[pending.rid] = pending
        return page(
            "login.html",
            status_code=status_code,
            client_id=pending.client_id,
            rid=pending.rid,
            login_hint=login if login is not None else pending.login_hint,
            error=error,
            action="/login",
        )

    def _pending(self, rid: str) -> PendingAuthorization | None:
        with self.provider.lock:
            pending = self.provider.grants.pending.get(rid)
            if pending is None or pending.expires <= self.provider.clock.now():
                return None
            return pending

    def _issue_code(
        self, pending: PendingAuthorization, session: Session, status_code: int
    ) -> Response:
        code = new_secret()
        record = AuthorizationCode(
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            sub=session.sub,
            scopes=pending.scopes,
            nonce=pending.nonce,
            code_challenge=pending.code_challenge,
            code_challenge_method=pending.code_challenge_method,
            auth_time=session.auth_time,
            expires=self.provider.clock.now() + self.provider.config.code_ttl,
        )
        with self.provider.lock:
            self.provider.grants.codes[digest(code)] = record
        params = {"code": code, "state": pending.state, "iss": self._response_iss()}
        return self._redirect(pending.redirect_uri, params, status_code)

    def _error_redirect(
        self, redirect_uri: str, state: str | None, err: AuthorizationError, status_code: int = 302
    ) -> Response:
        params = {
            "error": err.error,
            "error_description": err.description,
            "state": state,
            "iss": self._response_iss(),
        }
        return self._redirect(redirect_uri, params, status_code)

    def _response_iss(self) -> str | None:
        """RFC 9207 `iss` on every authorization response, unless a switch bends it."""
        switches = self.provider.switches
        if switches.missing_auth_response_iss:
            return None
        if switches.wrong_auth_response_iss:
            return WRONG_ISSUER
        return self.provider.issuer

    @staticmethod
    def _redirect(uri: str, params: dict[str, str | None], status_code: int) -> Response:
        response = redirect_with(uri, params)
        response.status_code = status_code
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        return response
