"""Bearer tokens Gatepass issued (id_token or access token) → the principal behind them.

The signature, issuer, audience and expiry are checked offline by the issuer's verifier.
What can change after issue — the user disabled, the key revoked or expired, the session
(token family) revoked — is read in one query and reused for a short TTL; the change epoch
(see `Gateway`) clears this cache on every replica when any of those change.
"""

from __future__ import annotations

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


class Claims(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def key_id(self) -> int: ...
    @property
    def family_id(self) -> str: ...


Verify = Callable[[str], Awaitable[Any]]
LoadState = Callable[[str, int, str], Awaitable[tuple[User, VirtualKey, bool] | None]]


@dataclass(frozen=True, slots=True)
class _State:
    principal: Principal | None
    denial: Denial | None


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and len(credential) <= MAX_TOKEN_LENGTH


class TokenAuthenticator:
    def __init__(self, verify: Verify, load_state: LoadState, ttl: float) -> None:
        self._verify = verify
        self._load_state = load_state
        self._ttl = ttl
        self._cache: dict[tuple[str, int, str], tuple[float, _State]] = {}

    async def check(self, token: str) -> KeyCheck:
        claims: Claims | None = await self._verify(token)
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
