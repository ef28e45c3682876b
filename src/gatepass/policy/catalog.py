"""The model catalogue: public model ids and aliases → the provider route that serves them.

Held in memory and rebuilt from the store when it changes, so routing costs one dict lookup.
Provider keys are decrypted here, once per rebuild, and live only in process memory.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from gatepass.crypto import Keyring, SecretDecryptionError
from gatepass.store.models import ModelRoute, Provider


@dataclass(frozen=True, slots=True)
class Upstream:
    """A provider as the proxy needs it. `api_key` is plaintext: never log or return it."""

    name: str
    kind: str
    base_url: str
    api_key: str = field(repr=False)
    timeout: float
    extra_headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Route:
    model_id: str  # the canonical public id
    upstream_model: str  # what the provider is sent
    display_name: str
    created_at: datetime
    upstream: Upstream


def normalise_model_name(name: str) -> str | None:
    """The name to look up, or None when it cannot be a catalogue name.

    Catalogue names are matched exactly; this only refuses what could smuggle a look-alike
    past a human reading the logs (format and control characters, surrounding space).
    """
    if not name or name != name.strip():
        return None
    if any(unicodedata.category(ch) in ("Cf", "Cc", "Zs") for ch in name):
        return None
    return name


class Catalog:
    """Immutable snapshot of the routes; swap in a new one to change it."""

    def __init__(self, routes: Iterable[Route] = (), aliases: dict[str, str] | None = None):
        self.routes: dict[str, Route] = {route.model_id: route for route in routes}
        by_name: dict[str, Route] = dict(self.routes)
        for alias, target in (aliases or {}).items():
            if target in self.routes and alias not in self.routes:
                by_name[alias] = self.routes[target]
        # Only names that survive normalisation can ever resolve: checked once, here, so a
        # lookup is one dict access (a name not in the dict resolves to nothing either way).
        self._by_name = {n: r for n, r in by_name.items() if normalise_model_name(n) == n}
        self._canonical: dict[tuple[str, ...], frozenset[str]] = {}  # allow-list → its ids

    def resolve(self, name: str) -> Route | None:
        """The route for a public id or alias, exactly as written."""
        return self._by_name.get(name)

    def canonical(self, names: Iterable[str]) -> frozenset[str]:
        """Canonical ids of the names that resolve (for allow-lists written with aliases)."""
        key = tuple(names)
        ids = self._canonical.get(key)
        if ids is None:
            ids = frozenset(route.model_id for n in key if (route := self.resolve(n)) is not None)
            if len(self._canonical) >= 10_000:  # allow-lists are few; bound it all the same
                self._canonical.clear()
            self._canonical[key] = ids
        return ids

    def ordered(self) -> list[Route]:
        return list(self.routes.values())

    @classmethod
    def build(
        cls, rows: Iterable[tuple[ModelRoute, Provider]], keyring: Keyring
    ) -> tuple[Catalog, list[str]]:
        """A catalogue from store rows, plus warnings for providers whose key is unreadable."""
        upstreams: dict[int, Upstream | None] = {}
        warnings: list[str] = []
        routes: list[Route] = []
        aliases: dict[str, str] = {}
        for route_row, provider in rows:
            assert provider.id is not None
            if provider.id not in upstreams:
                try:
                    api_key = keyring.decrypt(provider.api_key_encrypted)
                except SecretDecryptionError:
                    warnings.append(
                        f"provider {provider.name}: api key cannot be decrypted "
                        "(was the secret key changed?); its models are unavailable"
                    )
                    upstreams[provider.id] = None
                    continue
                upstreams[provider.id] = Upstream(
                    name=provider.name,
                    kind=provider.kind,
                    base_url=provider.base_url.rstrip("/"),
                    api_key=api_key,
                    timeout=provider.timeout,
                    extra_headers=tuple((provider.extra_headers or {}).items()),
                )
            upstream = upstreams[provider.id]
            if upstream is None:
                continue
            routes.append(
                Route(
                    model_id=route_row.model_id,
                    upstream_model=route_row.upstream_model or route_row.model_id,
                    display_name=route_row.display_name or route_row.model_id,
                    created_at=route_row.created_at,
                    upstream=upstream,
                )
            )
            for alias in route_row.aliases or []:
                aliases[alias] = route_row.model_id
        return cls(routes, aliases), warnings
