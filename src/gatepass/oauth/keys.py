"""Gatepass's signing keys: kept in the database (so every replica shares them), held in memory
for signing and verifying, rotated with a grace period during which old keys still verify.

Replicas converge without talking to each other: each re-reads the keys periodically, and at
once (rate-limited) when it meets a token whose `kid` it does not know.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from joserfc.jwk import RSAKey
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.crypto import Keyring, SecretDecryptionError
from gatepass.store import oauth_queries as q
from gatepass.store.db import SessionMaker
from gatepass.store.oauth import SigningKey
from gatepass.store.types import utcnow

log = logging.getLogger("gatepass.oauth")

ALGORITHM = "RS256"
RSA_BITS = 2048
UNKNOWN_KID_RELOAD_INTERVAL = 10.0  # seconds between reloads caused by unknown `kid`s
PERIODIC_RELOAD_INTERVAL = 300.0  # seconds; must stay well below the rotation grace


def new_signing_key() -> SigningKey:
    """A fresh RS256 key as a row: private JWK not yet encrypted (see `_encrypt`)."""
    kid = secrets.token_urlsafe(12)
    key = RSAKey.generate_key(RSA_BITS, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return SigningKey(
        kid=kid,
        alg=ALGORITHM,
        private_jwk_encrypted=orjson.dumps(key.as_dict(private=True)).decode(),
        public_jwk=dict(key.as_dict(private=False)),
        active=True,
    )


def _encrypt(row: SigningKey, keyring: Keyring) -> SigningKey:
    row.private_jwk_encrypted = keyring.encrypt(row.private_jwk_encrypted)
    return row


async def rotate_signing_key(session: AsyncSession, keyring: Keyring, grace_seconds: int) -> str:
    """Make a new active key; the old ones verify for `grace_seconds` more. Returns the new kid.

    For the CLI (`gatepass keys rotate-signing` or similar); the caller commits.
    """
    now = utcnow()
    await q.delete_retired_signing_keys(session, now=now)
    await q.retire_active_signing_keys(session, retire_after=now + timedelta(seconds=grace_seconds))
    row = await q.insert_signing_key(session, key=_encrypt(new_signing_key(), keyring))
    return row.kid


@dataclass(frozen=True, slots=True)
class PublicKey:
    kid: str
    key: RSAKey
    retire_after: datetime | None  # None while active

    def usable(self, now: datetime) -> bool:
        return self.retire_after is None or now < self.retire_after


class SigningKeys:
    """The in-memory view of the `signing_key` table: one signer, every verifying key."""

    def __init__(
        self,
        sessions: SessionMaker,
        keyring: Keyring,
        *,
        unknown_kid_interval: float = UNKNOWN_KID_RELOAD_INTERVAL,
    ) -> None:
        self._sessions = sessions
        self._keyring = keyring
        self._unknown_kid_interval = unknown_kid_interval
        self._signer: tuple[str, RSAKey] | None = None
        self._public: dict[str, PublicKey] = {}
        self._last_unknown_reload = -float("inf")  # monotonic seconds
        self._lock = asyncio.Lock()

    async def ensure(self) -> None:
        """Load the keys, creating an active one if there is none (start-up)."""
        await self.reload()
        if self._signer is not None:
            return
        try:
            async with self._sessions() as session:
                await q.insert_signing_key(session, key=_encrypt(new_signing_key(), self._keyring))
                await session.commit()
        except IntegrityError:
            # Another replica created one at the same moment; theirs is as good as ours.
            log.info("signing key created concurrently by another replica")
        await self.reload()
        if self._signer is None:
            raise RuntimeError("no active signing key after creating one")

    async def rotate(self, grace_seconds: int) -> str:
        """Rotate in the database and start signing with the new key here at once."""
        async with self._sessions() as session:
            kid = await rotate_signing_key(session, self._keyring, grace_seconds)
            await session.commit()
        await self.reload()
        return kid

    async def reload(self) -> None:
        """Re-read every usable key from the database."""
        async with self._lock:
            async with self._sessions() as session:
                rows = await q.list_signing_keys(session, now=utcnow())
            self._install(rows)

    def _install(self, rows: Sequence[SigningKey]) -> None:
        public: dict[str, PublicKey] = {}
        active: list[SigningKey] = []
        for row in rows:
            if row.alg != ALGORITHM:
                continue
            retire_after = None if row.active else row.retire_after
            public[row.kid] = PublicKey(row.kid, RSAKey.import_key(row.public_jwk), retire_after)
            if row.active:
                active.append(row)
        # Several active keys can exist briefly (two replicas starting together): every
        # replica signs with the newest it can decrypt, and all stay published.
        self._signer = self._newest_usable_signer(active)
        self._public = public

    def _newest_usable_signer(self, active: list[SigningKey]) -> tuple[str, RSAKey] | None:
        for row in sorted(active, key=lambda r: r.id or 0, reverse=True):
            if self._signer is not None and self._signer[0] == row.kid:
                return self._signer
            try:
                private: dict[str, Any] = orjson.loads(
                    self._keyring.decrypt(row.private_jwk_encrypted)
                )
            except SecretDecryptionError:
                # Written under another server secret: its tokens still verify (the public
                # half is stored in clear) but it cannot sign; `ensure` makes a new one.
                log.error("signing key %s cannot be decrypted with this secret_key", row.kid)
                continue
            return row.kid, RSAKey.import_key(private)
        return None

    @property
    def signer(self) -> tuple[str, RSAKey]:
        """(kid, private key) to sign new tokens with."""
        if self._signer is None:
            raise RuntimeError("signing keys not loaded")
        return self._signer

    def jwks(self) -> dict[str, Any]:
        """The published key set (RFC 7517 §5): active keys and rotated ones in their grace."""
        now = utcnow()
        keys = [
            {**k.key.as_dict(private=False), "kid": k.kid, "alg": ALGORITHM, "use": "sig"}
            for k in self._public.values()
            if k.usable(now)
        ]
        return {"keys": keys}

    def verifying_key(self, kid: str) -> RSAKey | None:
        """The key for `kid` if it is known and not past its grace period (memory only)."""
        found = self._public.get(kid)
        if found is None or not found.usable(utcnow()):
            return None
        return found.key

    async def verifying_key_or_reload(self, kid: str) -> RSAKey | None:
        """Like `verifying_key`, but an unknown `kid` may trigger one rate-limited reload."""
        key = self.verifying_key(kid)
        if key is not None or kid in self._public:
            return key
        now = time.monotonic()
        if now - self._last_unknown_reload < self._unknown_kid_interval:
            return None
        self._last_unknown_reload = now
        try:
            await self.reload()
        except Exception:
            log.exception("signing key reload failed")
            return None
        return self.verifying_key(kid)
