"""The verification page (RFC 8628 §3.3): enter or confirm the code, sign in, approve or deny.

    GET  /device[?user_code=…]   the form, code pre-filled but never submitted for the user (§5.4)
    POST /device                 check the code → a page on our origin that goes on to …
    GET  /device/sign-in         … broker.begin(purpose="device") → IdP → DeviceCompletion
         completion "device"     who is asking, who signed in → Approve / Deny
    POST /device/confirm         the decision

Every POST passes the same-origin check and a CSRF token tied to an `HttpOnly`,
`SameSite=Strict` cookie (see `device_guard`). The entry cookie also ties the sign-in link to
the browser that typed the code. The confirm cookie, set when the person comes back from the
IdP, is the only way to decide: its hash is stored on the request with who signed in, and the
decision's UPDATE matches it; the decision goes to the audit trail. Wrong codes and refused decisions count against the address's
budget (§5.1); past it, a 429 page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from gatepass.crypto import Keyring
from gatepass.identity import LoginBroker, SignedIn
from gatepass.oauth.device import display_user_code, normalise_user_code
from gatepass.oauth.device_guard import (
    AttemptLimiter,
    client_address,
    csrf_matches,
    csrf_token,
    new_secret,
    same_origin,
    set_browser_cookie,
)
from gatepass.store import identity_queries
from gatepass.store import oauth_queries as q
from gatepass.store.db import SessionMaker
from gatepass.store.events import AuditEvent
from gatepass.store.oauth import DeviceAuthorization
from gatepass.store.types import utcnow
from gatepass.web import page

log = logging.getLogger("gatepass.oauth")

ENTRY_COOKIE = "gatepass_device"
ENTRY_COOKIE_AGE = 3600  # seconds
CONFIRM_COOKIE_PREFIX = "gatepass_device_confirm_"
SIGN_IN_PATH = "/device/sign-in"
CONFIRM_PATH = "/device/confirm"
SURFACES = {"claude_code": "Claude Code", "gatepass_cli": "gatepass login (terminal)"}
REFERRER_POLICY = "same-origin"  # so a POST's `Origin` is ours, not `null`


def confirm_cookie(keyring: Keyring, user_code: str) -> str:
    """One confirm cookie per code, so two sign-ins in two tabs do not clash."""
    return CONFIRM_COOKIE_PREFIX + keyring.hash_credential("device-cookie:" + user_code)[:16]


def describe_client(row: DeviceAuthorization) -> str:
    named = SURFACES.get(row.surface or "", row.surface)
    if named and row.client_id and row.client_id != row.surface:
        return f"{named} (client {row.client_id})"
    return named or row.client_id or "an unnamed application"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def message(title: str, text: str, *, status: int, error: bool = True) -> Response:
    context = {"title": title, "message": text, "error": error}
    return page("message.html", context, status=status, referrer_policy=REFERRER_POLICY)


def cross_site() -> Response:
    return message("Request refused", "This request did not come from a Gatepass page.", status=403)


def too_many(retry_after: int) -> Response:
    minutes = max(1, round(retry_after / 60))
    response = message(
        "Too many attempts",
        f"Too many wrong or refused codes from your network. Try again in {minutes} minute(s).",
        status=429,
    )
    response.headers["retry-after"] = str(retry_after)
    return response


def unusable(row: DeviceAuthorization | None, now: datetime) -> Response | None:
    """The page for a code that cannot be approved now, or None if it can."""
    if row is None:
        return None  # the caller words "unknown" itself
    if now >= row.expires_at:
        return message(
            "Code expired",
            "This code has expired. Start the sign-in again in your application.",
            status=400,
        )
    if row.status != "pending":
        return message(
            "Code already used",
            "This code was already used. Start the sign-in again in your application.",
            status=400,
        )
    return None


@dataclass
class DevicePages:
    sessions: SessionMaker
    keyring: Keyring
    broker: LoginBroker
    public_url: str
    secure_cookies: bool
    limiter: AttemptLimiter  # wrong codes and refused decisions, per address

    def _entry_form(
        self, request: Request, user_code: str, error: str | None = None, status: int = 200
    ) -> Response:
        secret = request.cookies.get(ENTRY_COOKIE) or new_secret()
        context = {
            "user_code": user_code,
            "csrf": csrf_token(self.keyring, secret, "entry"),
            "error": error,
        }
        response = page(
            "oauth/device.html", context, status=status, referrer_policy=REFERRER_POLICY
        )
        set_browser_cookie(
            response, ENTRY_COOKIE, secret, max_age=ENTRY_COOKIE_AGE, secure=self.secure_cookies
        )
        return response

    async def _find(self, user_code: str) -> DeviceAuthorization | None:
        async with self.sessions() as session:
            return await q.get_device_authorization_by_user_code(session, user_code=user_code)

    async def _audit(
        self, session: AsyncSession, row: DeviceAuthorization, decision: str, address: str
    ) -> None:
        """Who let which device in (or refused it), in the audit trail; never a code."""
        user = await identity_queries.get_user(session, user_id=row.user_id or 0)
        event = AuditEvent(
            actor=user.email if user is not None else None,
            action="device." + decision,
            target=describe_client(row)[:320],
            detail={
                "device_authorization_id": row.id,
                "user_id": row.user_id,
                "key_id": row.key_id,
                "requester_ip": row.requester_ip,
            },
            ip=address[:64],
        )
        identity_queries.add_audit(session, event)

    async def show(self, request: Request) -> Response:
        """GET /device: the form, with the code from `verification_uri_complete` if any."""
        typed = request.query_params.get("user_code", "")
        code = normalise_user_code(typed)
        return self._entry_form(request, display_user_code(code) if code else typed[:20])

    def _refuse_early(self, request: Request) -> Response | None:
        """A POST from another site, or from an address out of attempts, goes no further."""
        if not same_origin(request, self.public_url):
            return cross_site()
        retry_after = self.limiter.blocked(client_address(request))
        return None if retry_after is None else too_many(retry_after)

    async def submit(self, request: Request) -> Response:
        """POST /device: check the code, then go on to sign in."""
        refused = self._refuse_early(request)
        if refused is not None:
            return refused
        address = client_address(request)
        form = await request.form()
        typed = form.get("user_code")
        typed = typed[:40] if isinstance(typed, str) else ""
        secret = request.cookies.get(ENTRY_COOKIE)
        if not csrf_matches(self.keyring, secret, "entry", form.get("csrf")):
            self.limiter.hit(address)
            return self._entry_form(
                request, typed, "Your session expired. Check the code and continue again.", 403
            )
        code = normalise_user_code(typed)
        row = await self._find(code) if code is not None else None
        refusal = unusable(row, utcnow())
        if row is None or refusal is not None:
            self.limiter.hit(address)  # RFC 8628 §5.1: guessing costs attempts
            if refusal is not None:
                return refusal
            return self._entry_form(
                request, typed, "That code is not valid. Check it and try again.", 400
            )
        assert code is not None
        assert secret is not None
        shown = display_user_code(code)
        ticket = csrf_token(self.keyring, secret, "sign-in:" + code)
        target = f"{SIGN_IN_PATH}?{urlencode({'user_code': shown, 'ticket': ticket})}"
        return page(
            "oauth/device_continue.html",
            {"target": target, "user_code": shown},
            referrer_policy=REFERRER_POLICY,
        )

    async def start(self, request: Request) -> Response:
        """GET /device/sign-in: only from the browser that entered the code."""
        code = normalise_user_code(request.query_params.get("user_code", ""))
        secret = request.cookies.get(ENTRY_COOKIE)
        ticket = request.query_params.get("ticket")
        if code is None or not csrf_matches(self.keyring, secret, "sign-in:" + code, ticket):
            return self._entry_form(request, "", "Enter the code to continue.", 400)
        row = await self._find(code)
        refusal = unusable(row, utcnow())
        if row is None or refusal is not None:
            return refusal or self._entry_form(request, "", "That code is not valid.", 400)
        return await self.broker.begin(request, purpose="device", payload={"user_code": code})

    async def complete(
        self, request: Request, payload: dict[str, Any], signed_in: SignedIn
    ) -> Response:
        """The broker's "device" completion: show who is asking, ask to approve or deny."""
        code = normalise_user_code(str(payload.get("user_code", "")))
        row = await self._find(code) if code is not None else None
        now = utcnow()
        refusal = unusable(row, now)
        if row is None or row.id is None or code is None or refusal is not None:
            return refusal or message("Unknown code", "This code is not valid.", status=400)
        secret = new_secret()
        async with self.sessions() as session:
            attached = await q.attach_device_approver(
                session,
                authorization_id=row.id,
                user_id=signed_in.user_id,
                key_id=signed_in.key_id,
                auth_time=signed_in.auth_time,
                confirm_hash=self.keyring.hash_credential(secret),
                now=now,
            )
            await session.commit()
        if not attached:
            return message("Code already used", "This code can no longer be approved.", status=400)
        shown = display_user_code(code)
        context = {
            "email": signed_in.email or signed_in.name or signed_in.public_id,
            "client": describe_client(row),
            "user_code": shown,
            "requester_ip": row.requester_ip or "unknown",
            "user_agent": row.requester_user_agent,
            "requested_at": _when(row.created_at),
            "csrf": csrf_token(self.keyring, secret, "confirm:" + code),
        }
        response = page("oauth/device_confirm.html", context, referrer_policy=REFERRER_POLICY)
        remaining = max(1, int((row.expires_at - now).total_seconds()))
        name = confirm_cookie(self.keyring, code)
        set_browser_cookie(response, name, secret, max_age=remaining, secure=self.secure_cookies)
        return response

    async def confirm(self, request: Request) -> Response:
        """POST /device/confirm: approve or deny, from the browser that signed in."""
        refused = self._refuse_early(request)
        if refused is not None:
            return refused
        address = client_address(request)
        form = await request.form()
        typed, decision = form.get("user_code"), form.get("decision")
        code = normalise_user_code(typed) if isinstance(typed, str) else None
        secret = request.cookies.get(confirm_cookie(self.keyring, code)) if code else None
        if code is None or not csrf_matches(
            self.keyring, secret, "confirm:" + code, form.get("csrf")
        ):
            self.limiter.hit(address)
            return message(
                "Request refused",
                "This approval did not come from the browser that signed in. Start again.",
                status=403,
            )
        if decision not in ("approve", "deny"):
            return message("Request refused", "Choose Approve or Deny.", status=400)
        assert secret is not None
        row = await self._find(code)
        now = utcnow()
        decided = False
        if row is not None and row.id is not None:
            async with self.sessions() as session:
                decided = await q.decide_device_authorization(
                    session,
                    authorization_id=row.id,
                    confirm_hash=self.keyring.hash_credential(secret),
                    approve=decision == "approve",
                    now=now,
                )
                if decided:
                    await self._audit(session, row, str(decision), address)
                await session.commit()
        if not decided:
            self.limiter.hit(address)
            return unusable(row, now) or message(
                "Request refused", "This code can no longer be approved here.", status=400
            )
        assert row is not None
        log.info("device authorization %s %s by user %s", row.id, decision, row.user_id)
        if decision == "approve":
            response = message(
                "Device signed in",
                f"{describe_client(row)} is now signed in. You can close this tab.",
                status=200,
                error=False,
            )
        else:
            response = message(
                "Sign-in denied",
                "The request was denied; the application will not be signed in.",
                status=200,
                error=False,
            )
        response.delete_cookie(confirm_cookie(self.keyring, code), path="/device")
        return response
