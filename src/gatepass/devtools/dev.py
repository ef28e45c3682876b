"""`gatepass dev`: Gatepass on SQLite with a fake upstream, all on loopback, one process."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass import manage
from gatepass.app import create_app
from gatepass.config import ConfigError, load_settings
from gatepass.crypto import Keyring
from gatepass.devtools.fake_upstream import FakeUpstream
from gatepass.devtools.server import bind_loopback, make_server
from gatepass.manage import identity as identity_ops
from gatepass.store import identity_queries, queries
from gatepass.store.db import create_engine, session_maker
from gatepass.store.migrate import upgrade

DEV_MODELS = (
    ("claude-opus-4-7", "Claude Opus 4.7"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
    ("claude-haiku-4-5", "Claude Haiku 4.5"),
)
FAKE_UPSTREAM_KEY = "sk-ant-fake-dev"
DEV_KEY_NAME = "dev"
DEV_IDP = "dev"


def _dev_secret(data_dir: Path) -> str:
    path = data_dir / "secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def _prepare(
    settings_url: str, keyring: Keyring, upstream_url: str | None, idp_issuer: str | None
) -> str:
    """Providers and models for the fake upstream, sign-in through idp-dev, and a fresh
    secret for the `dev` key."""
    engine = create_engine(settings_url)
    try:
        async with session_maker(engine)() as session:
            if upstream_url is not None:
                await manage.add_provider(
                    session,
                    keyring,
                    name="fake",
                    kind="anthropic",
                    base_url=upstream_url,
                    api_key=FAKE_UPSTREAM_KEY,
                )
                for model_id, display in DEV_MODELS:
                    await manage.add_model(
                        session, model_id=model_id, provider="fake", display_name=display
                    )
            if idp_issuer is not None:
                await _prepare_sign_in(session, keyring, idp_issuer)
            if await queries.get_key_by_name(session, name=DEV_KEY_NAME) is None:
                issued = await manage.create_key(session, keyring, name=DEV_KEY_NAME, models="*")
            else:
                issued = await manage.rotate_key(session, keyring, name=DEV_KEY_NAME)
            await session.commit()
            return issued.secret
    finally:
        await engine.dispose()


async def _prepare_sign_in(session: AsyncSession, keyring: Keyring, issuer: str) -> None:
    """idp-dev as the corporate IdP; its groups mapped to keys; Claude Desktop registered."""
    await identity_ops.add_idp(
        session,
        keyring,
        name=DEV_IDP,
        issuer=issuer,
        client_id="gatepass",
        client_secret="gatepass-dev-secret",
        scopes="openid profile email groups offline_access",
        allowed_domains=["corp.example"],
    )
    await identity_ops.add_client(
        session, keyring, client_id="claude-desktop", redirect_uris=["http://127.0.0.1/callback"]
    )
    for key, models in (("engineering", "*"), ("sales", "claude-haiku-4-5")):
        if await queries.get_key_by_name(session, name=key) is None:
            await manage.create_key(session, keyring, name=key, models=models)
    existing = {(m.group, k.name) for m, _, k in await identity_queries.list_mappings(session)}
    for group, key, role, priority in (
        ("admins", "engineering", "admin", 5),
        ("engineering", "engineering", "user", 10),
        ("sales", "sales", "user", 20),
    ):
        if (group, key) not in existing:
            await identity_ops.add_mapping(
                session, idp=DEV_IDP, group=group, key=key, role=role, priority=priority
            )


def _start_idp(port: int) -> tuple[Any, str] | None:
    """idp-dev's app and issuer, or None when the idp-dev package is not installed."""
    try:
        from idp_dev import IdpConfig
        from idp_dev import create_app as create_idp_app
    except ImportError:
        return None
    issuer = f"http://127.0.0.1:{port}"
    config = IdpConfig.demo(redirect_uris=[f"http://127.0.0.1/sso/callback/{DEV_IDP}"])
    return create_idp_app(config, issuer), issuer


def run_dev(
    *, port: int, upstream_port: int, idp_port: int, data_dir: Path, config: Path | None
) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        settings = load_settings(
            config,
            environment="development",
            database_url=f"sqlite+aiosqlite:///{(data_dir / 'dev.db').resolve()}",
            secret_key=_dev_secret(data_dir),
            public_url=f"http://127.0.0.1:{port}",
        )
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    upgrade(settings.database_url)
    keyring = Keyring(settings.secret_key.get_secret_value())
    servers = []
    upstream_url = None
    if not settings.providers:
        fake = FakeUpstream(api_key=FAKE_UPSTREAM_KEY, record=False)
        upstream_sock = bind_loopback(upstream_port)
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        servers.append((make_server(fake.app), upstream_sock))
    else:
        asyncio.run(_sync(settings, keyring))
    idp = _start_idp(idp_port)
    idp_issuer = None
    if idp is not None:
        idp_app, idp_issuer = idp
        servers.append((make_server(idp_app), bind_loopback(idp_port)))
    secret = asyncio.run(_prepare(settings.database_url, keyring, upstream_url, idp_issuer))
    gateway_sock = bind_loopback(port)
    servers.append((make_server(create_app(settings), log_level="info"), gateway_sock))
    base = f"http://127.0.0.1:{port}/anthropic"
    typer.echo(
        f"""
Gatepass is running at http://127.0.0.1:{port} (SQLite in {data_dir}/dev.db)
Upstream: {upstream_url or "as configured"}

Try it:
  curl {base}/v1/messages -H 'x-api-key: {secret}' -H 'anthropic-version: 2023-06-01' \\
       -H 'content-type: application/json' \\
       -d '{{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{{"role":"user","content":"Hello"}}]}}'
  ANTHROPIC_BASE_URL={base} ANTHROPIC_API_KEY={secret} claude

{_sign_in_help(port, idp_issuer)}
Dev key (all models; rotated at every start):
{secret}
""".rstrip()
    )

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))

    asyncio.run(serve_all())


def _sign_in_help(port: int, idp_issuer: str | None) -> str:
    if idp_issuer is None:
        return "Sign-in: install idp-dev (pip install -e ./idp-dev) to try interactive sign-in.\n"
    return f"""Sign-in: idp-dev at {idp_issuer} (alice@corp.example / alice-password,
         bob@corp.example / bob-password). Claude Desktop managed configuration:
  inferenceProvider = gateway
  inferenceGatewayBaseUrl = http://127.0.0.1:{port}/anthropic
  inferenceCredentialKind = interactive
  inferenceGatewayOidc = {{"issuer": "http://127.0.0.1:{port}", "clientId": "claude-desktop"}}
"""


async def _sync(settings: object, keyring: Keyring) -> None:
    from gatepass.config import Settings

    assert isinstance(settings, Settings)
    engine = create_engine(settings.database_url)
    try:
        async with session_maker(engine)() as session:
            await manage.sync_declared(session, keyring, settings.providers, settings.models)
            await session.commit()
    finally:
        await engine.dispose()
