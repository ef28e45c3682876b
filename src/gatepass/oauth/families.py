"""Token families: one per sign-in session (an authorization code and every refresh token and
JWT descending from it). Revoking a family ends the session everywhere: its refresh tokens
fail at the token endpoint, and its JWTs (carrying the family as `sid`) fail at the proxy.
"""

from __future__ import annotations

import time
from datetime import timedelta

from gatepass.store import identity_queries
from gatepass.store import oauth_queries as q
from gatepass.store.db import SessionMaker
from gatepass.store.types import utcnow

CACHE_LIMIT = 100_000  # entries; cleared wholesale past this, it is only a cache


class Families:
    """Revokes families and answers "is this family revoked?" through a short-TTL cache."""

    def __init__(self, sessions: SessionMaker, *, remember_for: int, cache_ttl: float) -> None:
        self._sessions = sessions
        self._remember_for = remember_for  # seconds: longer than any token of the family lives
        self._cache_ttl = cache_ttl  # seconds a "not revoked" answer is reused
        self._cache: dict[str, float] = {}  # family id → monotonic time it was seen live
        self._revoked: set[str] = set()  # revoked families this process knows of

    async def revoke(self, family_id: str) -> None:
        """Revoke the family's refresh tokens and list it as revoked (idempotent)."""
        now = utcnow()
        async with self._sessions() as session:
            await q.revoke_family(
                session,
                family_id=family_id,
                now=now,
                forget_after=now + timedelta(seconds=self._remember_for),
            )
            # Every replica's proxy drops its cached sessions on the next epoch poll.
            await identity_queries.bump_change_epoch(session)
            await session.commit()
        self._cache.pop(family_id, None)
        self._remember_revoked(family_id)

    async def is_revoked(self, family_id: str) -> bool:
        """Whether the family was revoked; a "no" may be up to `cache_ttl` seconds old."""
        if family_id in self._revoked:
            return True
        seen = self._cache.get(family_id)
        now = time.monotonic()
        if seen is not None and now - seen < self._cache_ttl:
            return False
        async with self._sessions() as session:
            revoked = await q.is_family_revoked(session, family_id=family_id)
        if revoked:
            self._remember_revoked(family_id)
            self._cache.pop(family_id, None)
        else:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[family_id] = now
        return revoked

    def _remember_revoked(self, family_id: str) -> None:
        if len(self._revoked) >= CACHE_LIMIT:
            self._revoked.clear()
        self._revoked.add(family_id)
