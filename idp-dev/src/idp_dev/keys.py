"""Signing keys: one RS256 and one ES256 key in use, retired keys published for a grace period."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, KeySet, RSAKey

from idp_dev.clock import Clock

SigningKey = RSAKey | ECKey


@dataclass(frozen=True)
class Retired:
    key: SigningKey
    published_until: int  # epoch seconds


def _generate(alg: str) -> SigningKey:
    kid = f"{alg.lower()}-{secrets.token_hex(6)}"
    params: KeyParameters = {"kid": kid, "use": "sig", "alg": alg}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params)
    return ECKey.generate_key("P-256", parameters=params)


class KeyRing:
    """Keys generated at start-up and on demand; nothing is ever written to disk."""

    algs = ("RS256", "ES256")

    def __init__(self, clock: Clock, grace_period: int) -> None:
        self.clock = clock
        self.grace_period = grace_period  # seconds
        self.active: dict[str, SigningKey] = {alg: _generate(alg) for alg in self.algs}
        self.retired: list[Retired] = []

    def signing_key(self, alg: str) -> SigningKey:
        return self.active[alg]

    def rotate(self) -> dict[str, str]:
        """New keys sign from now on; the old ones stay in the JWKS so issued tokens verify."""
        until = self.clock.now() + self.grace_period
        self.retired.extend(Retired(key, until) for key in self.active.values())
        self.active = {alg: _generate(alg) for alg in self.algs}
        return {alg: str(key.kid) for alg, key in self.active.items()}

    def published(self) -> list[SigningKey]:
        now = self.clock.now()
        self.retired = [r for r in self.retired if r.published_until > now]
        return [*self.active.values(), *(r.key for r in self.retired)]

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document (RFC 7517 §5)."""
        return dict(KeySet(list(self.published())).as_dict(private=False))

    def public_key_set(self) -> KeySet:
        """Verification keys, for the provider's own checks of tokens it issued."""
        return KeySet.import_key_set(KeySet(list(self.published())).as_dict(private=False))
