"""Operations on providers, models and keys, shared by the CLI, `apply` and the admin API.

Each function validates its input and raises `ManageError` with a sentence meant for the
operator; none of them returns a stored secret (a new virtual key is returned once, by
`create_key` and `rotate_key`, and never again).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.config import ModelConfig, ProviderConfig
from gatepass.crypto import Keyring, new_virtual_key, visible_prefix
from gatepass.limits.spec import LimitSpec
from gatepass.manage.audit import record, snapshot
from gatepass.policy.principal import ALL_MODELS
from gatepass.store import queries
from gatepass.store.identity_queries import bump_change_epoch
from gatepass.store.models import ModelRoute, Provider, VirtualKey
from gatepass.store.types import utcnow

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$")
DURATION_PATTERN = re.compile(r"^(\d+)\s*(m|h|d|w)$")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
PROVIDER_KINDS = ("anthropic",)


class ManageError(Exception):
    """An operator request that cannot be carried out; the message says why."""


def check_name(kind: str, name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise ManageError(
            f"invalid {kind} name {name!r}: use letters, digits and . _ @ - (up to 100 characters)"
        )


def _check_model_id(model_id: str) -> None:
    if not MODEL_PATTERN.match(model_id):
        raise ManageError(f"invalid model id {model_id!r}")


def _check_base_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ManageError(f"invalid base URL {url!r}: expected http(s)://host[:port][/path]")
    if parts.query or parts.fragment:
        raise ManageError(f"invalid base URL {url!r}: no query string or fragment")


def parse_expiry(value: str | None, now: datetime | None = None) -> datetime | None:
    """`30d`, `12h`, `90m`, `2w`, or an ISO 8601 date/time (UTC if no zone) → an instant."""
    if value is None or value == "":
        return None
    now = now or datetime.now(UTC)
    match = DURATION_PATTERN.match(value.strip())
    if match:
        amount = int(match.group(1))
        if amount <= 0:
            raise ManageError("expiry must be in the future")
        try:
            return now + timedelta(**{DURATION_UNITS[match.group(2)]: amount})
        except OverflowError as exc:
            raise ManageError(f"invalid expiry {value!r}: too far in the future") from exc
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ManageError(
            f"invalid expiry {value!r}: use a duration like 30d, 12h, 90m, 2w or an ISO date"
        ) from exc
    try:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError as exc:
        raise ManageError(f"invalid expiry {value!r}: too far in the future") from exc
    if moment <= now:
        raise ManageError("expiry must be in the future")
    return moment


def parse_instant(value: str, now: datetime | None = None) -> datetime:
    """A moment in the past: `24h`, `7d`, `30m`, `2w` ago, or an ISO 8601 date/time (UTC)."""
    now = now or datetime.now(UTC)
    match = DURATION_PATTERN.match(value.strip())
    if match:
        return now - timedelta(**{DURATION_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ManageError(f"invalid time {value!r}: use an ISO date/time or 24h, 7d ...") from exc
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_models(value: str | Sequence[str]) -> list[str]:
    """`*`, or a comma-separated list (or sequence) of model ids, without duplicates."""
    items = value.split(",") if isinstance(value, str) else list(value)
    models: list[str] = []
    for item in (i.strip() for i in items):
        if item and item not in models:
            models.append(item)
    if not models:
        raise ManageError("a key needs at least one model, or '*' for all")
    if ALL_MODELS in models and len(models) > 1:
        raise ManageError("'*' already allows every model; list no others with it")
    return models


# providers


async def add_provider(
    session: AsyncSession,
    keyring: Keyring,
    *,
    name: str,
    kind: str,
    base_url: str,
    api_key: str,
    timeout: float = 600.0,
    extra_headers: dict[str, str] | None = None,
) -> Provider:
    """Create or update a provider; its API key is encrypted before it is stored."""
    check_name("provider", name)
    if kind not in PROVIDER_KINDS:
        raise ManageError(f"unknown provider kind {kind!r}; supported: {', '.join(PROVIDER_KINDS)}")
    _check_base_url(base_url)
    if not api_key.strip():
        raise ManageError("the provider API key is empty")
    if timeout <= 0:
        raise ManageError("timeout must be positive")
    before = snapshot(await queries.get_provider(session, name=name))
    provider = await queries.upsert_provider(
        session,
        name=name,
        kind=kind,
        base_url=base_url.rstrip("/"),
        api_key_encrypted=keyring.encrypt(api_key.strip()),
        timeout=timeout,
        extra_headers=extra_headers or {},
    )
    # the API key itself is never recorded; header values may be credentials, so names only
    after = snapshot(provider) or {}
    after["extra_headers"] = sorted(provider.extra_headers or {})
    if before is not None:
        before["extra_headers"] = sorted(before.get("extra_headers") or {})
    record(
        session,
        "provider.update" if before else "provider.create",
        name,
        before=before,
        after=after,
    )
    await bump_change_epoch(session)
    return provider


async def remove_provider(session: AsyncSession, *, name: str) -> None:
    provider = await queries.get_provider(session, name=name)
    if provider is None:
        raise ManageError(f"no provider named {name!r}")
    routes = [r for r, p in await queries.list_model_routes(session) if p.id == provider.id]
    if routes:
        names = ", ".join(r.model_id for r in routes)
        raise ManageError(f"provider {name!r} still serves models ({names}); remove them first")
    before = snapshot(provider) or {}
    before["extra_headers"] = sorted(provider.extra_headers or {})
    await queries.delete_provider(session, name=name)
    record(session, "provider.delete", name, before=before)
    await bump_change_epoch(session)


# models


async def add_model(
    session: AsyncSession,
    *,
    model_id: str,
    provider: str,
    upstream_model: str | None = None,
    display_name: str | None = None,
    aliases: Sequence[str] = (),
) -> ModelRoute:
    """Create or update the route for a public model id (and its aliases)."""
    _check_model_id(model_id)
    for alias in aliases:
        _check_model_id(alias)
    if upstream_model is not None:
        _check_model_id(upstream_model)
    owner = await queries.get_provider(session, name=provider)
    if owner is None:
        raise ManageError(f"no provider named {provider!r}; add it first")
    assert owner.id is not None
    taken: dict[str, str] = {}
    for route, _ in await queries.list_model_routes(session):
        if route.model_id == model_id:
            continue
        taken[route.model_id] = route.model_id
        for alias in route.aliases or []:
            taken[alias] = route.model_id
    for name in (model_id, *aliases):
        if name in taken:
            raise ManageError(f"{name!r} is already a model id or alias of {taken[name]!r}")
    before = snapshot(await queries.get_model_route(session, model_id=model_id))
    route = await queries.upsert_model_route(
        session,
        model_id=model_id,
        provider_id=owner.id,
        upstream_model=upstream_model,
        display_name=display_name,
        aliases=list(dict.fromkeys(aliases)),
    )
    action = "model.update" if before else "model.create"
    record(session, action, model_id, before=before, after=snapshot(route))
    await bump_change_epoch(session)
    return route


async def remove_model(session: AsyncSession, *, model_id: str) -> None:
    before = snapshot(await queries.get_model_route(session, model_id=model_id))
    if not await queries.delete_model_route(session, model_id=model_id):
        raise ManageError(f"no model {model_id!r}")
    record(session, "model.delete", model_id, before=before)
    await bump_change_epoch(session)


async def sync_declared(
    session: AsyncSession,
    keyring: Keyring,
    providers: Sequence[ProviderConfig],
    models: Sequence[ModelConfig],
) -> None:
    """Upsert providers and models declared in a config or apply file."""
    for p in providers:
        await add_provider(
            session,
            keyring,
            name=p.name,
            kind=p.kind,
            base_url=p.base_url,
            api_key=p.api_key.get_secret_value(),
            timeout=p.timeout,
            extra_headers=p.extra_headers,
        )
    for m in models:
        await add_model(
            session,
            model_id=m.id,
            provider=m.provider,
            upstream_model=m.upstream_model,
            display_name=m.display_name,
            aliases=m.aliases,
        )


# virtual keys


@dataclass(frozen=True)
class IssuedKey:
    """A key and its secret, which exists only in this object and is shown once."""

    key: VirtualKey
    secret: str


async def _check_models_exist(session: AsyncSession, models: list[str]) -> None:
    if models == [ALL_MODELS]:
        return
    known: set[str] = set()
    for route, _ in await queries.list_model_routes(session):
        known.add(route.model_id)
        known.update(route.aliases or [])
    unknown = [m for m in models if m not in known]
    if unknown:
        raise ManageError(
            f"unknown model(s): {', '.join(unknown)}; add them with `gatepass models add` first"
        )


async def create_key(
    session: AsyncSession,
    keyring: Keyring,
    *,
    name: str,
    models: str | Sequence[str],
    expires: str | None = None,
    limits: LimitSpec | None = None,
) -> IssuedKey:
    check_name("key", name)
    allowed = parse_models(models)
    await _check_models_exist(session, allowed)
    if await queries.get_key_by_name(session, name=name) is not None:
        raise ManageError(f"a key named {name!r} already exists")
    secret = new_virtual_key()
    key = await queries.create_key(
        session,
        name=name,
        prefix=visible_prefix(secret),
        secret_hash=keyring.hash_credential(secret),
        allowed_models=allowed,
        expires_at=parse_expiry(expires),
    )
    if limits is not None and not limits.is_empty():
        limits.apply_to(key, utcnow())
        session.add(key)
        await session.flush()
    record(session, "key.create", name, after=snapshot(key))
    return IssuedKey(key, secret)


async def _key(session: AsyncSession, name: str) -> VirtualKey:
    key = await queries.get_key_by_name(session, name=name)
    if key is None:
        raise ManageError(f"no key named {name!r}")
    return key


async def revoke_key(session: AsyncSession, *, name: str) -> VirtualKey:
    key = await _key(session, name)
    if key.revoked_at is None:
        before = snapshot(key)
        key.revoked_at = key.updated_at = utcnow()
        record(session, "key.revoke", name, before=before, after=snapshot(key))
        session.add(key)
        await bump_change_epoch(session)
        await session.flush()
    return key


async def rotate_key(session: AsyncSession, keyring: Keyring, *, name: str) -> IssuedKey:
    """Give the key a new secret; the old one stops working (after the cache TTL)."""
    key = await _key(session, name)
    if key.revoked_at is not None:
        raise ManageError(f"key {name!r} is revoked; create a new one instead")
    before = snapshot(key)
    secret = new_virtual_key()
    key.secret_hash = keyring.hash_credential(secret)
    key.prefix = visible_prefix(secret)
    key.updated_at = utcnow()
    session.add(key)
    record(session, "key.rotate", name, before=before, after=snapshot(key))
    await bump_change_epoch(session)
    await session.flush()
    return IssuedKey(key, secret)


async def update_key(
    session: AsyncSession,
    *,
    name: str,
    models: str | Sequence[str] | None = None,
    expires: str | None = None,
    managed_settings: dict[str, Any] | None = None,
    clear_managed_settings: bool = False,
    limits: LimitSpec | None = None,
) -> VirtualKey:
    """Change a key's allow-list, expiry, managed settings or limits (secret unchanged)."""
    key = await _key(session, name)
    before = snapshot(key)
    if models is not None:
        allowed = parse_models(models)
        await _check_models_exist(session, allowed)
        key.allowed_models = allowed
    if expires is not None:
        key.expires_at = parse_expiry(expires)
    if managed_settings is not None and clear_managed_settings:
        raise ManageError("give managed settings or clear them, not both")
    if managed_settings is not None:
        key.managed_settings = managed_settings
    if clear_managed_settings:
        key.managed_settings = None
    if limits is not None:
        limits.apply_to(key, utcnow())
    key.updated_at = utcnow()
    session.add(key)
    record(session, "key.update", name, before=before, after=snapshot(key))
    await bump_change_epoch(session)
    await session.flush()
    return key
