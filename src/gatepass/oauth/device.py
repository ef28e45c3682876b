"""`POST /oauth/device_authorization` (RFC 8628 §3.1-3.2) and the codes it hands out.

The request needs nothing: Claude Code sends only `surface=claude_code`, other clients may add
`client_id` or `scope`, and any parameter we do not know is ignored (RFC 8628 §3.1, RFC 6749
§3.2). There is no client authentication: device-flow clients are public.

The `device_code` (256 random bits) is what the client polls with and is stored as a keyed
hash; the `user_code` (8 letters from a base-20 alphabet without vowels, RFC 8628 §6.1, shown
`XXXX-XXXX`) is what the user types and is unique among requests still live.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gatepass.config import SignInSettings
from gatepass.crypto import Keyring
from gatepass.oauth.device_guard import AttemptLimiter, client_address
from gatepass.oauth.errors import TokenError, json_response
from gatepass.store import oauth_queries as q
from gatepass.store.db import SessionMaker
from gatepass.store.oauth import DeviceAuthorization
from gatepass.store.types import utcnow

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 §6.1: base 20, no vowels, no 0/O 1/I
USER_CODE_LENGTH = 8  # 20^8 ≈ 2^34.6 codes; guessing is bounded by the page's rate limit
VERIFICATION_PATH = "/device"
# What a token's `client_id` may be when taken from the request (it ends up in JWT claims).
TOKEN_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:@/+-]{1,100}$")
FALLBACK_CLIENT_ID = "device-flow"  # when the client named neither itself nor its surface
MAX_STORED = 200  # characters kept of client_id and surface (display only beyond the claim)
MAX_USER_AGENT = 500  # characters
CODE_ATTEMPTS = 10  # tries at an unused user code before giving up (a collision is ~1 in 10^10)


def new_user_code() -> str:
    """8 letters from the base-20 alphabet, uniformly (RFC 8628 §6.1)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def normalise_user_code(typed: str) -> str | None:
    """What the user typed, as stored: case-insensitive, dashes and spaces ignored (§6.1)."""
    letters = re.sub(r"[\s\-\u2013\u2014]", "", typed).upper()  # also typographic dashes
    if len(letters) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in letters):
        return None
    return letters


def display_user_code(code: str) -> str:
    """`XXXX-XXXX`: easier to read and type (RFC 8628 §6.1)."""
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def token_client_id(authorization: DeviceAuthorization) -> str:
    """The `client_id` of the tokens a device authorization issues.

    The client's own `client_id` when it sent one, else its `surface` (Claude Code sends
    `claude_code`), else `device-flow`. Device-flow clients need not be registered: refreshes
    of a device-flow family are accepted as from a public client (see `Grants.refresh_token`).
    """
    for candidate in (authorization.client_id, authorization.surface):
        if candidate is not None and TOKEN_CLIENT_ID.match(candidate):
            return candidate
    return FALLBACK_CLIENT_ID


def _first(form: FormData, name: str) -> str | None:
    """A parameter's first value, trimmed to what we store; never an error (RFC 8628 §3.1)."""
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_STORED]


@dataclass
class DeviceAuthorizationEndpoint:
    sessions: SessionMaker
    keyring: Keyring
    settings: SignInSettings
    public_url: str
    limiter: AttemptLimiter

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except TokenError as exc:
            return exc.response()

    async def _handle(self, request: Request) -> Response:
        address = client_address(request)
        # RFC 8628 §5.2: bound how fast one address can mint codes. `slow_down` is the error
        # the client already knows how to back off from.
        retry_after = self.limiter.hit(address)
        if retry_after is not None:
            raise TokenError(
                "slow_down",
                "too many device authorization requests from this address; try again later",
                status=429,
                headers={"retry-after": str(retry_after)},
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # An empty body (or one of another type) is a request with no parameters, not an error.
        form = await request.form() if content_type == "application/x-www-form-urlencoded" else None
        client_id = _first(form, "client_id") if form is not None else None
        surface = _first(form, "surface") if form is not None else None
        device_code = secrets.token_urlsafe(32)  # 256 bits (RFC 8628 §5.2)
        now = utcnow()
        ttl = self.settings.device_code_ttl
        async with self.sessions() as session:
            for _ in range(CODE_ATTEMPTS):
                user_code = new_user_code()
                if not await q.is_user_code_live(session, user_code=user_code, now=now):
                    break
            else:  # pragma: no cover - 10 collisions in a row among 2.56e10 codes
                raise TokenError(
                    "temporarily_unavailable", "no free user code; try again", status=503
                )
            user_agent = request.headers.get("user-agent")
            await q.insert_device_authorization(
                session,
                authorization=DeviceAuthorization(
                    device_code_hash=self.keyring.hash_credential(device_code),
                    user_code=user_code,
                    client_id=client_id,
                    surface=surface,
                    requester_ip=address[:64],
                    requester_user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
                    poll_interval=self.settings.device_poll_interval,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                ),
            )
            await session.commit()
        shown = display_user_code(user_code)
        verification_uri = self.public_url + VERIFICATION_PATH
        body: dict[str, Any] = {
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": verification_uri,
            "verification_uri_complete": f"{verification_uri}?user_code={shown}",
            "expires_in": ttl,
            "interval": self.settings.device_poll_interval,
        }
        return json_response(body)
