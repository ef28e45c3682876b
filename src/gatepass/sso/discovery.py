"""IdP metadata (OIDC Discovery 1.0) and signing keys (JWKS), cached per issuer.

Metadata and keys are kept for `ttl` seconds. A token naming a `kid` we do not hold makes
us fetch the JWKS again (the IdP may have rotated), but at most once per `refetch_interval`
per IdP, so a stream of forged `kid`s cannot turn Gatepass into a JWKS-fetching amplifier.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import Key, import_key

from gatepass.sso.errors import LoginError
from gatepass.sso.http import IdpHttp

METADATA_TTL = 3600.0  # seconds
JWKS_REFETCH_INTERVAL = 30.0  # seconds between refetches forced by an unknown kid


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of an IdP's discovery document that Gatepass uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    iss_parameter_supported: bool  # RFC 9207 §3


@dataclass
class _Keys:
    keys: tuple[Key, ...]
    fetched_at: float
    forced_at: float | None = None  # when an unknown kid last made us refetch


def _endpoint(document: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = document.get(name)
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    if required:
        raise LoginError(
            "discovery_invalid",
            "The identity provider's configuration is incomplete.",
            hint="Ask your administrator to check this identity provider's settings.",
            detail=f"discovery document lacks {name}",
        )
    return None


def parse_metadata(document: dict[str, Any], *, issuer: str) -> ProviderMetadata:
    """Check and keep what we need. OIDC Discovery §4.3: `issuer` must equal the configured one."""
    if document.get("issuer") != issuer:
        raise LoginError(
            "discovery_issuer_mismatch",
            "The identity provider identified itself as a different issuer than configured.",
            hint="Ask your administrator to check the issuer URL of this identity provider.",
            detail=f"expected {issuer!r}, discovery says {document.get('issuer')!r}",
        )
    authorization = _endpoint(document, "authorization_endpoint", required=True)
    token = _endpoint(document, "token_endpoint", required=True)
    jwks = _endpoint(document, "jwks_uri", required=True)
    assert authorization is not None
    assert token is not None
    assert jwks is not None
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=authorization,
        token_endpoint=token,
        jwks_uri=jwks,
        userinfo_endpoint=_endpoint(document, "userinfo_endpoint", required=False),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
    )


class Directory:
    """Discovery documents and key sets of the IdPs Gatepass signs people in with."""

    def __init__(
        self,
        http: IdpHttp,
        *,
        ttl: float = METADATA_TTL,
        refetch_interval: float = JWKS_REFETCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.clock = clock
        self._metadata: dict[str, tuple[ProviderMetadata, float]] = {}
        self._keys: dict[str, _Keys] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, issuer: str) -> asyncio.Lock:
        return self._locks.setdefault(issuer, asyncio.Lock())

    async def metadata(self, issuer: str) -> ProviderMetadata:
        """The issuer's metadata, from the cache while fresh."""
        cached = self._metadata.get(issuer)
        if cached is not None and self.clock() - cached[1] < self.ttl:
            return cached[0]
        async with self._lock(issuer):
            cached = self._metadata.get(issuer)
            if cached is not None and self.clock() - cached[1] < self.ttl:
                return cached[0]
            url = issuer + "/.well-known/openid-configuration"
            document = await self.http.get_json(url, what="discovery")
            metadata = parse_metadata(document, issuer=issuer)
            self._metadata[issuer] = (metadata, self.clock())
            return metadata

    async def keys(self, metadata: ProviderMetadata, *, refresh: bool = False) -> tuple[Key, ...]:
        """The issuer's key set; `refresh` asks for a new copy (granted once per interval)."""
        issuer = metadata.issuer
        cached = self._keys.get(issuer)
        if cached is not None and not self._stale(cached, refresh):
            return cached.keys
        async with self._lock(issuer):
            cached = self._keys.get(issuer)
            if cached is not None and not self._stale(cached, refresh):
                return cached.keys
            if refresh and cached is not None:
                cached.forced_at = self.clock()  # counted even if this fetch fails
            document = await self.http.get_json(metadata.jwks_uri, what="jwks")
            now = self.clock()
            forced = now if refresh else (cached.forced_at if cached else None)
            self._keys[issuer] = _Keys(_import_keys(document), now, forced)
            return self._keys[issuer].keys

    def _stale(self, cached: _Keys, refresh: bool) -> bool:
        now = self.clock()
        if now - cached.fetched_at >= self.ttl:
            return True
        if not refresh:
            return False
        # A forced refetch is granted once per interval, however many unknown kids arrive.
        return cached.forced_at is None or now - cached.forced_at >= self.refetch_interval

    def forget(self, issuer: str) -> None:
        """Drop what is cached for `issuer` (e.g. after its connection changed)."""
        self._metadata.pop(issuer, None)
        self._keys.pop(issuer, None)


def _import_keys(document: dict[str, Any]) -> tuple[Key, ...]:
    """Public signature keys only. Entries we cannot use (encryption keys, unknown types,
    malformed ones) are skipped rather than failing the whole set: IdPs publish keys for
    other purposes too, and one bad entry must not lock everybody out."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise LoginError(
            "jwks_invalid",
            "The identity provider's signing keys could not be read.",
            detail="JWKS has no 'keys' list",
        )
    usable: list[Key] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ("RSA", "EC", "OKP") or "d" in entry:
            continue  # never "oct": a shared secret has no place in a public key set
        try:
            usable.append(import_key(entry))
        except (JoseError, ValueError, TypeError):
            continue
    return tuple(usable)
