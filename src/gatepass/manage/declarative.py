"""`gatepass apply FILE`: import providers, models, keys, IdPs, clients and mappings from TOML.

Applying the same file twice changes nothing the second time: objects are matched by name
(mappings by IdP, group or email, and key) and updated in place. Keys that do not exist yet
are created, and their secrets returned once; existing keys keep their secrets.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.config import (
    ConfigError,
    ModelConfig,
    ProviderConfig,
    describe_validation_error,
    resolve_env_refs,
)
from gatepass.crypto import Keyring
from gatepass.limits.spec import COLUMNS, LimitSpec
from gatepass.manage import IssuedKey, create_key, sync_declared, update_key
from gatepass.manage import identity as ops
from gatepass.store import identity_queries as q
from gatepass.store import queries


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyDeclaration(LimitSpec):
    """A key and, optionally, its limits (the `keys create` flags, with underscores)."""

    name: str
    models: list[str]
    expires: str | None = None

    def limits(self) -> LimitSpec:
        fields = {*COLUMNS, "period", "reset"} & self.model_fields_set
        return LimitSpec.model_validate(self.model_dump(include=fields))


class IdpDeclaration(_Strict):
    name: str
    issuer: str
    client_id: str
    client_secret: SecretStr | None = None
    scopes: str = "openid profile email"
    groups_claim: str = "groups"
    allowed_domains: list[str] = []
    require_verified_email: bool = True
    audiences: list[str] = []


class ClientDeclaration(_Strict):
    client_id: str
    redirect_uris: list[str]
    public: bool = True
    name: str | None = None


class MappingDeclaration(_Strict):
    idp: str
    key: str
    group: str | None = None
    email: str | None = None
    priority: int = 100
    role: Literal["user", "admin"] = "user"

    @model_validator(mode="after")
    def _one_subject(self) -> MappingDeclaration:
        if (self.group is None) == (self.email is None):
            raise ValueError("give exactly one of group or email")
        return self


class Declaration(_Strict):
    providers: list[ProviderConfig] = []
    models: list[ModelConfig] = []
    keys: list[KeyDeclaration] = []
    idps: list[IdpDeclaration] = []
    clients: list[ClientDeclaration] = []
    mappings: list[MappingDeclaration] = []


def load_declaration(path: Path) -> Declaration:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"apply file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return Declaration.model_validate(resolve_env_refs(data, ""))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from exc


async def apply_declaration(
    session: AsyncSession, keyring: Keyring, declaration: Declaration
) -> list[IssuedKey]:
    """Create or update everything declared; returns keys created (with their secrets)."""
    await sync_declared(session, keyring, declaration.providers, declaration.models)
    issued: list[IssuedKey] = []
    for key in declaration.keys:
        limits = key.limits()
        if await queries.get_key_by_name(session, name=key.name) is None:
            issued.append(
                await create_key(
                    session,
                    keyring,
                    name=key.name,
                    models=key.models,
                    expires=key.expires,
                    limits=limits,
                )
            )
        elif not limits.is_empty():
            await update_key(session, name=key.name, limits=limits)
    for idp in declaration.idps:
        await ops.add_idp(
            session,
            keyring,
            name=idp.name,
            issuer=idp.issuer,
            client_id=idp.client_id,
            client_secret=idp.client_secret.get_secret_value() if idp.client_secret else None,
            scopes=idp.scopes,
            groups_claim=idp.groups_claim,
            allowed_domains=idp.allowed_domains,
            require_verified_email=idp.require_verified_email,
            audiences=idp.audiences,
        )
    for client in declaration.clients:
        await ops.add_client(
            session,
            keyring,
            client_id=client.client_id,
            redirect_uris=client.redirect_uris,
            public=client.public,
            name=client.name,
        )
    existing = await q.list_mappings(session)
    for mapping in declaration.mappings:
        match = next(
            (
                m
                for m, i, k in existing
                if i.name == mapping.idp
                and k.name == mapping.key
                and m.group == mapping.group
                and m.email == (mapping.email.strip().lower() if mapping.email else None)
            ),
            None,
        )
        if match is not None:
            match.priority, match.role = mapping.priority, mapping.role
            session.add(match)
            await q.bump_change_epoch(session)
            continue
        await ops.add_mapping(
            session,
            idp=mapping.idp,
            key=mapping.key,
            group=mapping.group,
            email=mapping.email,
            priority=mapping.priority,
            role=mapping.role,
        )
    await session.flush()
    return issued
