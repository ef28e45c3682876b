"""Starting a sign-in: pick the IdP (or show the chooser), remember the attempt, redirect.

The attempt lives server-side in a `PendingLogin`: `state` (stored hashed) finds it again,
`nonce` and the PKCE verifier (encrypted) check what comes back, and a random value in a
browser-binding cookie (stored hashed) makes sure the callback arrives in the browser that
started (RFC 9700 §4.7: a state alone does not stop login CSRF if it can be replayed
elsewhere).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gatepass.identity import Completion, FailureReturn, Purpose, ReturnTo
from gatepass.sso import audit
from gatepass.sso.claims import split_email
from gatepass.sso.discovery import Directory
from gatepass.sso.errors import LoginError
from gatepass.sso.http import IdpHttp
from gatepass.sso.pages import chooser_page, failure_page
from gatepass.store import identity_queries, sso_queries
from gatepass.store.identity import IdpConnection
from gatepass.store.oauth import PendingLogin
from gatepass.store.types import utcnow

if TYPE_CHECKING:
    from gatepass.runtime import Gateway

COOKIE_PREFIX = "gatepass_sso_"
COOKIE_PATH = "/sso/"
CHOOSE_PATH = "/sso/choose"


def cookie_name(state_hash: str) -> str:
    """One binding cookie per sign-in, so a second one started in another tab (the issuer's
    authorize endpoint is outside the cookie's path, so it cannot see or reuse the first)
    does not break the first."""
    return COOKIE_PREFIX + state_hash[:16]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def redirect_uri(public_url: str, idp_name: str) -> str:
    """What to register at the IdP: `{public_url}/sso/callback/{idp name}`."""
    return f"{public_url}/sso/callback/{idp_name}"


def pick_idp(
    idps: Sequence[IdpConnection], login_hint: str | None
) -> tuple[IdpConnection | None, list[IdpConnection]]:
    """The IdP to use, or None and the ones to offer: the only one; else the one whose
    allowed domains hold the hint's domain; else a choice."""
    if len(idps) == 1:
        return idps[0], list(idps)
    parts = split_email(login_hint)
    if parts is not None:
        matches = [idp for idp in idps if parts[1] in (d.lower() for d in idp.allowed_domains)]
        if len(matches) == 1:
            return matches[0], matches
        if matches:
            return None, matches
    return None, list(idps)


@dataclass
class Login:
    """`begin` and the chooser's POST; `Callback` finishes what this starts."""

    gateway: Gateway
    http: IdpHttp
    directory: Directory
    completions: dict[str, Completion] = field(default_factory=dict)
    failures: dict[str, FailureReturn] = field(default_factory=dict)

    def _hash(self, value: str) -> str:
        return self.gateway.keyring.hash_credential(value)

    async def begin(
        self,
        request: Request,
        *,
        purpose: Purpose,
        payload: dict[str, Any],
        login_hint: str | None = None,
    ) -> Response:
        try:
            return await self._begin(request, purpose, payload, login_hint)
        except LoginError as error:
            return await self.fail(request, error, idp_name=None, purpose=purpose)

    async def _begin(
        self, request: Request, purpose: Purpose, payload: dict[str, Any], hint: str | None
    ) -> Response:
        if purpose not in self.completions:
            raise LoginError(
                "purpose_unavailable",
                "Signing in for this is not available on this server.",
                detail=f"no completion registered for {purpose!r}",
                status=500,
            )
        async with self.gateway.sessions() as session:
            idps = list(await identity_queries.list_idps(session))
        if not idps:
            raise LoginError(
                "no_idp",
                "No identity provider is set up for signing in.",
                hint="Ask your administrator to connect your company's identity provider.",
                status=503,
            )
        chosen, offered = pick_idp(idps, hint)
        state, nonce, verifier = new_secret(), new_secret(), new_secret()
        if chosen is not None:
            response: Response = await self._redirect(chosen, state, nonce, verifier, hint)
        else:
            response = chooser_page(
                offered,
                login=state,
                action=CHOOSE_PATH,
                minutes=self.gateway.settings.sign_in.login_ttl // 60,
            )
        browser = new_secret()
        state_hash = self._hash(state)
        ttl = self.gateway.settings.sign_in.login_ttl
        async with self.gateway.sessions() as session:
            # forget attempts long over (kept a day for the audit trail's sake); indexed
            await sso_queries.delete_stale_pending_logins(
                session, before=utcnow() - timedelta(days=1)
            )
            sso_queries.add_pending_login(
                session,
                PendingLogin(
                    state_hash=state_hash,
                    browser_hash=self._hash(browser),
                    purpose=purpose,
                    request={"payload": payload, "login_hint": hint},
                    idp_id=chosen.id if chosen is not None else None,
                    nonce=nonce,
                    code_verifier_encrypted=self.gateway.keyring.encrypt(verifier),
                    expires_at=utcnow() + timedelta(seconds=ttl),
                ),
            )
            await session.commit()
        response.set_cookie(
            cookie_name(state_hash),
            browser,
            max_age=ttl,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",  # the IdP's redirect back is a top-level GET: Lax lets it through
            secure=self.gateway.settings.secure_cookies,
        )
        return response

    async def _redirect(
        self,
        idp: IdpConnection,
        state: str,
        nonce: str,
        verifier: str,
        login_hint: str | None,
    ) -> Response:
        """302 to the IdP's authorization endpoint (OIDC Core §3.1.2.1, RFC 7636 §4.3)."""
        metadata = await self.directory.metadata(idp.issuer)
        extra = {"login_hint": login_hint} if login_hint else {}
        async with self.http.oauth_client(
            client_id=idp.client_id,
            client_secret=None,
            redirect_uri=redirect_uri(self.gateway.settings.public_url, idp.name),
        ) as oauth:
            url, _ = oauth.create_authorization_url(
                metadata.authorization_endpoint,
                state=state,
                code_verifier=verifier,
                nonce=nonce,
                scope=idp.scopes,
                **extra,
            )
        return RedirectResponse(str(url), status_code=302, headers={"cache-control": "no-store"})

    async def choose(self, request: Request) -> Response:
        """GET /sso/choose: continue a pending sign-in at the IdP the person picked.

        A link, not a form: browsers apply CSP `form-action` to every redirect that follows
        a form submission, so a POST here could not go on to the IdP's origin."""
        login, chosen = request.query_params.get("login"), request.query_params.get("idp")
        name = chosen[:100] if isinstance(chosen, str) else None
        purpose = None
        try:
            if not isinstance(login, str) or not isinstance(name, str):
                raise LoginError("choice_invalid", "The sign-in choice was incomplete.")
            now = utcnow()
            async with self.gateway.sessions() as session:
                pending = await sso_queries.get_pending_login(session, state_hash=self._hash(login))
                self.check_pending(request, pending, now=now)
                assert pending is not None
                assert pending.id is not None
                purpose = pending.purpose
                idp = await identity_queries.get_idp(session, name=name)
                if idp is None or idp.id is None:
                    raise LoginError("choice_invalid", "That sign-in option does not exist.")
                if not await sso_queries.choose_pending_idp(
                    session, pending_id=pending.id, idp_id=idp.id, now=now
                ):
                    raise LoginError("state_replayed", "This sign-in link was already used.")
                await session.commit()
            assert pending.nonce is not None
            assert pending.code_verifier_encrypted is not None
            verifier = self.gateway.keyring.decrypt(pending.code_verifier_encrypted)
            hint = pending.request.get("login_hint")
            return await self._redirect(
                idp, login, pending.nonce, verifier, hint if isinstance(hint, str) else None
            )
        except LoginError as error:
            return await self.fail(request, error, idp_name=name, purpose=purpose)

    def check_pending(self, request: Request, pending: PendingLogin | None, *, now: Any) -> None:
        """Refuse a state we never issued, spent, expired, or started in another browser."""
        if pending is None:
            raise LoginError(
                "state_unknown", "This sign-in link is not valid (it may be from another server)."
            )
        if pending.used_at is not None:
            raise LoginError("state_replayed", "This sign-in link was already used.")
        if pending.expires_at <= now:
            raise LoginError(
                "state_expired", "This sign-in took too long and has expired.", status=400
            )
        browser = request.cookies.get(cookie_name(pending.state_hash), "")
        if not hmac.compare_digest(self._hash(browser), pending.browser_hash):
            raise LoginError(
                "browser_mismatch",
                "This sign-in was started in a different browser (or its cookie was lost).",
                hint="Start signing in again from the application, in this browser.",
            )

    async def fail(
        self,
        request: Request,
        error: LoginError,
        *,
        idp_name: str | None,
        purpose: str | None,
        email: str | None = None,
        back: ReturnTo | None = None,
    ) -> Response:
        """The page for `error`, after recording it; `back` leads to the waiting application."""
        reference = secrets.token_hex(6)
        denied = error.status == 403
        await audit.record(
            self.gateway.sessions,
            action="login.denied" if denied else "login.failure",
            outcome="denied" if denied else "failed",
            idp_name=idp_name,
            actor=email,
            request=request,
            reason=error.reason,
            purpose=purpose,
            reference=reference,
            detail=error.detail,
        )
        audit.log.info("sign-in %s: %s (%s)", reference, error.reason, error.detail or "")
        return failure_page(error, reference=reference, email=email, idp_name=idp_name, back=back)
