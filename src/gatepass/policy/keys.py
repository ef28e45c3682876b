"""Virtual-key authentication: keyed hash → one indexed lookup, reused for a short TTL."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gatepass.crypto import VIRTUAL_KEY_PREFIX, Keyring
from gatepass.limits.caps import limits_from_key
from gatepass.policy.principal import Principal
from gatepass.store.models import VirtualKey

KeyLoader = Callable[[str], Awaitable[VirtualKey | None]]
Denial = Literal[
    "unknown", "revoked", "expired", "invalid_token", "session_revoked", "user_disabled"
]
MAX_CREDENTIAL_LENGTH = 4096  # characters; longer is not ours, and not hashed


@dataclass(frozen=True, slots=True)
class KeyCheck:
    principal: Principal | None
    denial: Denial | None = None


def principal_from_row(row: VirtualKey) -> Principal:
    assert row.id is not None
    return Principal(
        key_id=row.id,
        key_name=row.name,
        allowed_models=tuple(row.allowed_models or ()),
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
        managed_settings=row.managed_settings,
        limits=limits_from_key(row),
    )


def looks_like_virtual_key(credential: str) -> bool:
    return credential.startswith(VIRTUAL_KEY_PREFIX) and len(credential) <= MAX_CREDENTIAL_LENGTH


class KeyAuthenticator:
    """Resolves virtual keys, caching hits and misses for `ttl` seconds.

    Misses are cached too so a flood of bad keys cannot turn into a flood of queries; the
    TTL bounds how long a revocation or a new key takes to be seen by this process.
    """

    def __init__(self, keyring: Keyring, load: KeyLoader, ttl: float, max_entries: int = 100_000):
        self._keyring = keyring
        self._load = load
        self._ttl = ttl
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def check(self, credential: str) -> KeyCheck:
        if not looks_like_virtual_key(credential):
            return KeyCheck(None, "unknown")
        digest = self._keyring.hash_credential(credential)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._ttl:
            principal = cached[1]
        else:
            row = await self._load(digest)
            principal = None if row is None else principal_from_row(row)
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        if principal is None:
            return KeyCheck(None, "unknown")
        if principal.revoked:
            return KeyCheck(None, "revoked")
        if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
            return KeyCheck(None, "expired")
        return KeyCheck(principal)

    def invalidate(self) -> None:
        self._cache.clear()
