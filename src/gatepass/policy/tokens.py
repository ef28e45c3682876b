"""Bearer JWTs → the principal behind them: Gatepass's own, or the corporate IdP's.

The token's *unverified* `iss` only chooses the verifier: Gatepass's own issuer goes to its
own verifier, any other to the external verifier (`gatepass.sso.resource`, for tokens the
corporate IdP issued), which refuses issuers no IdP connection accepts tokens from.

For Gatepass's own tokens, the signature, issuer, audience and expiry are checked offline by
the issuer's verifier. What can change after issue — the user disabled, the key revoked or
expired, the session (token family) revoked — is read in one query and reused for a short
TTL; the change epoch (see `Gateway`) clears this cache, and the external verifier's, on
every replica when any of those change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from gatepass.policy.keys import Denial, KeyCheck, principal_from_row
from gatepass.policy.principal import Principal
from gatepass.store.identity import User
from gatepass.store.models import VirtualKey

MAX_TOKEN_LENGTH = 16_384  # characters
MAX_VERIFIED = 10_000  # verified tokens remembered; the cache is cleared when it fills


class Claims(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def key_id(self) -> int: ...
    @property
    def family_id(self) -> str: ...


class ExternalTokens(Protocol):
    """Verifies tokens other issuers signed (the corporate IdP's, in `sso.resource`)."""

    async def check(self, token: str, issuer: str) -> KeyCheck: ...
    def invalidate(self) -> None: ...


Verify = Callable[[str], Awaitable[Any]]
LoadState = Callable[[str, int, str], Awaitable[tuple[User, VirtualKey, bool] | None]]


@dataclass(frozen=True, slots=True)
class _State:
    principal: Principal | None
    denial: Denial | None


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and len(credential) <= MAX_TOKEN_LENGTH


def unverified_issuer(token: str) -> str | None:
    """The `iss` a compact JWT claims, WITHOUT checking anything: only to pick a verifier."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, RecursionError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


class TokenAuthenticator:
    def __init__(self, verify: Verify, load_state: LoadState, ttl: float) -> None:
        self._verify = verify
        self._load_state = load_state
        self._ttl = ttl
        self._cache: dict[tuple[str, int, str], tuple[float, _State]] = {}
        # SHA-256 of a token that verified → (reuse until, Unix seconds; its claims). An RS256
        # verification costs more than the rest of the request's policy together. Reused for
        # the same `ttl` as the session state (so a retired signing key is noticed as fast as
        # a revocation) and never past `exp`; the change epoch clears it with the rest.
        self._verified: dict[bytes, tuple[float, Any]] = {}
        self._own_issuer: str | None = None
        self._external: ExternalTokens | None = None

    def use_external(self, own_issuer: str, external: ExternalTokens) -> None:
        """Send tokens whose `iss` is not `own_issuer` to `external` (else all are ours)."""
        self._own_issuer = own_issuer
        self._external = external

    async def check(self, token: str) -> KeyCheck:
        digest = hashlib.sha256(token.encode()).digest()
        claims = self._remembered(digest)  # only tokens our own verifier accepted are here
        if claims is None:
            if self._external is not None:
                issuer = unverified_issuer(token)
                if issuer is None:
                    return KeyCheck(None, "invalid_token")
                if issuer != self._own_issuer:
                    return await self._external.check(token, issuer)
            claims = await self._verify_and_remember(token, digest)
        if claims is None:
            return KeyCheck(None, "invalid_token")
        cache_key = (claims.subject, claims.key_id, claims.family_id)
        now = time.monotonic()
        cached = self._cache.get(cache_key)
        if cached is not None and now - cached[0] < self._ttl:
            state = cached[1]
        else:
            state = self._state(await self._load_state(*cache_key))
            if len(self._cache) >= 100_000:
                self._cache.clear()
            self._cache[cache_key] = (now, state)
        if state.principal is None:
            return KeyCheck(None, state.denial)
        principal = state.principal
        if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
            return KeyCheck(None, "expired")
        return KeyCheck(principal)

    def _remembered(self, digest: bytes) -> Claims | None:
        cached = self._verified.get(digest)
        if cached is None:
            return None
        if time.time() < cached[0]:
            claims: Claims = cached[1]
            return claims
        del self._verified[digest]
        return None

    async def _verify_and_remember(self, token: str, digest: bytes) -> Claims | None:
        verified: Claims | None = await self._verify(token)
        expires_at = getattr(verified, "expires_at", None)
        if verified is not None and isinstance(expires_at, int) and self._ttl > 0:
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()
            self._verified[digest] = (min(expires_at, time.time() + self._ttl), verified)
        return verified

    @staticmethod
    def _state(found: tuple[User, VirtualKey, bool] | None) -> _State:
        if found is None:
            return _State(None, "invalid_token")
        user, key, family_revoked = found
        if family_revoked:
            return _State(None, "session_revoked")
        if user.disabled:
            return _State(None, "user_disabled")
        if key.revoked_at is not None:
            return _State(None, "revoked")
        return _State(replace(principal_from_row(key), user_email=user.email), None)

    def invalidate(self) -> None:
        self._cache.clear()
        self._verified.clear()  # signing keys may have been removed
        if self._external is not None:
            self._external.invalidate()
