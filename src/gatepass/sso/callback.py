"""GET /sso/callback/{idp}: finish a sign-in the IdP sent back, then hand over to its purpose.

Order matters: everything that can be checked without the IdP (state, expiry, one use,
browser binding, which IdP, RFC 9207 `iss`) is checked, and the state spent, *before* the
code is redeemed; the ID token is validated before anything is written about the person.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from gatepass.sso import audit, exchange
from gatepass.sso.assertion import read_person
from gatepass.sso.errors import LoginDenied, LoginError
from gatepass.sso.id_token import Expected
from gatepass.sso.login import COOKIE_PATH, Login, cookie_name, redirect_uri
from gatepass.sso.pages import no_access
from gatepass.sso.people import Access, record_sign_in, resolve_access, signed_in
from gatepass.store import identity_queries, sso_queries
from gatepass.store.identity import IdpConnection
from gatepass.store.oauth import PendingLogin
from gatepass.store.types import utcnow

if TYPE_CHECKING:
    from gatepass.identity import ReturnTo, SignedIn

_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
log = logging.getLogger("gatepass.sso")


def _payload(pending: PendingLogin) -> dict[str, Any]:
    payload = pending.request.get("payload")
    return payload if isinstance(payload, dict) else {}


@dataclass
class _Attempt:
    """What we know so far, for the audit trail and the page if something fails."""

    idp_name: str
    purpose: str | None = None
    email: str | None = None


@dataclass
class Callback:
    login: Login

    async def handle(self, request: Request) -> Response:
        attempt = _Attempt(idp_name=str(request.path_params["idp"])[:100])
        pending: PendingLogin | None = None
        try:
            pending, idp = await self._claim(request, attempt)
            identity = await self._sign_in(request, pending, idp, attempt)
        except LoginError as error:
            # Only a sign-in that was ours and spent has a way back to its application; when
            # the answer itself is doubtful (state, IdP) the page is all the browser gets.
            back = None if pending is None else await self._way_back(pending, error)
            return await self.login.fail(
                request,
                error,
                idp_name=attempt.idp_name,
                purpose=attempt.purpose,
                email=attempt.email if isinstance(error, LoginDenied) else None,
                back=back,
            )
        completion = self.login.completions[pending.purpose]
        response = await completion(request, _payload(pending), identity)
        response.delete_cookie(cookie_name(pending.state_hash), path=COOKIE_PATH)
        return response

    async def _way_back(self, pending: PendingLogin, error: LoginError) -> ReturnTo | None:
        failure = self.login.failures.get(pending.purpose)
        if failure is None:
            return None
        # denied: refused, or the person cancelled at the IdP; otherwise something broke
        denied = error.status == 403 or error.reason == "idp_error"
        try:
            return await failure(_payload(pending), denied, error.message)
        except Exception:
            log.exception("could not work out the way back to the application")
            return None

    async def _claim(
        self, request: Request, attempt: _Attempt
    ) -> tuple[PendingLogin, IdpConnection]:
        """Find the pending sign-in, check it belongs here, and spend it (one use only)."""
        state = request.query_params.get("state")
        if not state:
            raise LoginError("state_missing", "The identity provider's answer had no state.")
        gateway = self.login.gateway
        now = utcnow()
        async with gateway.sessions() as session:
            pending = await sso_queries.get_pending_login(
                session, state_hash=gateway.keyring.hash_credential(state)
            )
            if pending is not None:
                attempt.purpose = pending.purpose
            self.login.check_pending(request, pending, now=now)
            assert pending is not None
            assert pending.id is not None
            idp = await identity_queries.get_idp(session, name=attempt.idp_name)
            if idp is None or pending.idp_id != idp.id:  # sent to one IdP, back from another
                raise LoginError(
                    "idp_mismatch", "This answer came from a different identity provider."
                )
            if pending.purpose not in self.login.completions:
                raise LoginError("purpose_unavailable", "This sign-in cannot be finished here.")
            if not await sso_queries.use_pending_login(session, pending_id=pending.id, now=now):
                raise LoginError("state_replayed", "This sign-in link was already used.")
            await session.commit()
        return pending, idp

    async def _sign_in(
        self, request: Request, pending: PendingLogin, idp: IdpConnection, attempt: _Attempt
    ) -> SignedIn:
        login = self.login
        gateway = login.gateway
        settings = gateway.settings
        params = request.query_params
        metadata = await login.directory.metadata(idp.issuer)
        iss = params.get("iss")
        # RFC 9207 §2.4: when present it must match; when advertised it must be present.
        if iss is not None and iss != idp.issuer:
            raise LoginError(
                "iss_mismatch",
                "The answer claims to come from a different identity provider.",
                detail=f"iss {iss[:200]!r}",
            )
        if iss is None and metadata.iss_parameter_supported:
            raise LoginError(
                "iss_missing", "The identity provider's answer did not say who sent it."
            )
        error = params.get("error")
        if error is not None:
            code = error if _ERROR_CODE.match(error) else "invalid"
            raise LoginError(
                "idp_error",
                f"The identity provider did not sign you in ({code}).",
                hint="If you cancelled, start again from the application; otherwise ask "
                "your administrator.",
                detail=f"{code}: {params.get('error_description', '')[:300]}",
            )
        auth_code = params.get("code")
        if not auth_code:
            raise LoginError("code_missing", "The identity provider's answer had no code.")
        assert pending.code_verifier_encrypted is not None
        assert pending.nonce is not None
        secret = (
            gateway.keyring.decrypt(idp.client_secret_encrypted)
            if idp.client_secret_encrypted
            else None
        )
        token = await exchange.redeem_code(
            login.http,
            token_endpoint=metadata.token_endpoint,
            client_id=idp.client_id,
            client_secret=secret,
            redirect_uri=redirect_uri(settings.public_url, idp.name),
            code=auth_code,
            code_verifier=gateway.keyring.decrypt(pending.code_verifier_encrypted),
        )
        person = await read_person(
            token,
            http=login.http,
            directory=login.directory,
            metadata=metadata,
            idp=idp,
            expected=Expected(
                issuer=idp.issuer,
                client_id=idp.client_id,
                leeway=settings.sign_in.clock_skew,
                nonce=pending.nonce,
            ),
            max_groups=settings.sign_in.max_groups,
        )
        assert person is not None
        attempt.email = person.email
        now = utcnow()
        async with gateway.sessions() as session:
            user = await record_sign_in(
                session,
                idp=idp,
                subject=person.subject,
                email=person.email,
                name=person.name,
                groups=person.groups,
                now=now,
            )
            assert idp.id is not None
            access = await resolve_access(session, idp_id=idp.id, user=user, now=now)
            refresh_token = token.get("refresh_token")
            granted = isinstance(access, Access) and not user.disabled
            if granted and isinstance(refresh_token, str) and refresh_token:
                # kept for `recheck`: each refresh at the IdP re-asks whether they may stay
                user.upstream_refresh_token_encrypted = gateway.keyring.encrypt(refresh_token)
            await session.commit()
        if user.disabled:
            raise LoginDenied(
                "user_disabled",
                "Your account has been disabled in Gatepass.",
                hint="Ask your Gatepass administrator if you think this is a mistake.",
            )
        if not isinstance(access, Access):
            raise no_access(access.reason)
        identity = signed_in(user, idp_name=idp.name, access=access, auth_time=now)
        await audit.record(
            gateway.sessions,
            action="login.success",
            outcome="ok",
            idp_name=idp.name,
            actor=person.email,
            request=request,
            purpose=pending.purpose,
            user=user.public_id,
            key_id=access.key_id,
            groups_complete=person.groups.complete,
        )
        return identity
