"""The `gatepass` command line: run the gateway and manage what it serves.

Every command takes `--config FILE` (or `GATEPASS_CONFIG`); `--json` makes output
machine-readable. A new key's secret is printed once, on the last line of standard output.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass import manage
from gatepass.config import ConfigError, Settings, load_settings
from gatepass.crypto import Keyring
from gatepass.limits.spec import LimitSpec
from gatepass.manage.declarative import apply_declaration, load_declaration
from gatepass.store import queries
from gatepass.store.db import create_engine, session_maker
from gatepass.store.migrate import upgrade
from gatepass.store.models import VirtualKey

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
providers_app = typer.Typer(no_args_is_help=True, help="Upstream providers.")
models_app = typer.Typer(no_args_is_help=True, help="Public model ids and their routes.")
keys_app = typer.Typer(no_args_is_help=True, help="Virtual keys.")
app.add_typer(providers_app, name="providers")
app.add_typer(models_app, name="models")
app.add_typer(keys_app, name="keys")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $GATEPASS_CONFIG).",
        envvar="GATEPASS_CONFIG",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def limits_are_shared(settings: Settings) -> bool:
    """Whether limit counters live in Redis, shared by every worker and replica."""
    backend = settings.limits.backend
    return backend == "redis" or (backend == "auto" and settings.redis_url is not None)


def settings_from(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc)) from exc


def keyring_from(settings: Settings) -> Keyring:
    try:
        settings.check_secret()
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    return Keyring(settings.secret_key.get_secret_value())


def in_store(settings: Settings, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one action in a transaction; operator errors become a clean exit."""

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with session_maker(engine)() as session:
                result = await action(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except manage.ManageError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:
        if exc.__class__.__module__.startswith("sqlalchemy"):
            raise fail(
                f"database error: {exc.__class__.__name__}: {exc}. Did you run `gatepass migrate`?"
            ) from exc
        raise


def emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)


# running


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create or upgrade the database schema."""
    settings = settings_from(config)
    try:
        upgrade(settings.database_url)
    except Exception as exc:
        raise fail(f"migration failed: {exc}") from exc
    typer.echo("database is up to date")


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Also write uvicorn's access log line per request (slower).")
    ] = False,
) -> None:
    """Run the gateway."""
    import uvicorn

    settings = settings_from(config)
    if workers > 1 and not limits_are_shared(settings):
        raise fail(
            f"--workers {workers} needs budgets and rate limits in Redis (set redis_url): "
            "counted in process memory, every worker would allow the whole limit"
        )
    keyring = keyring_from(settings)
    if settings.providers or settings.models:
        in_store(
            settings,
            lambda s: manage.sync_declared(s, keyring, settings.providers, settings.models),
        )
    if config is not None:
        import os

        os.environ["GATEPASS_CONFIG"] = str(config.resolve())
    uvicorn.run(
        "gatepass.asgi:create_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,  # the request log already records every proxied request
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.drain_timeout) + 1,
    )


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Gatepass port.")] = 8080,
    upstream_port: Annotated[int, typer.Option(help="Fake upstream port.")] = 8081,
    idp_port: Annotated[int, typer.Option(help="idp-dev port.")] = 8082,
    data_dir: Annotated[Path, typer.Option(help="Where the dev database and secret live.")] = Path(
        ".gatepass"
    ),
    config: ConfigOption = None,
) -> None:
    """Run Gatepass on SQLite with a fake upstream, all on loopback, ready to call."""
    from gatepass.devtools.dev import run_dev

    run_dev(
        port=port, upstream_port=upstream_port, idp_port=idp_port, data_dir=data_dir, config=config
    )


@app.command("apply")
def apply_file(file: Path, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Import providers, models, keys, IdPs, clients and mappings from a TOML file.

    Idempotent. New keys' secrets are printed once, one per line, after the summary.
    """
    settings = settings_from(config)
    keyring = keyring_from(settings)
    try:
        declared = load_declaration(file)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    issued = in_store(settings, lambda s: apply_declaration(s, keyring, declared))
    counts = {
        "providers": len(declared.providers),
        "models": len(declared.models),
        "keys": len(declared.keys),
        "idps": len(declared.idps),
        "clients": len(declared.clients),
        "mappings": len(declared.mappings),
    }
    if as_json:
        secrets_out = {i.key.name: i.secret for i in issued}
        emit({"applied": counts, "created_keys": secrets_out}, True, "")
        return
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "nothing"
    typer.echo(f"applied {summary}")
    for item in issued:
        typer.echo(f"new key {item.key.name} (shown once):")
        typer.echo(item.secret)


# providers


@providers_app.command("add")
def providers_add(
    name: str,
    base_url: Annotated[str, typer.Option("--base-url", help="e.g. https://api.anthropic.com")],
    kind: Annotated[str, typer.Option(help="Provider kind.")] = "anthropic",
    api_key_env: Annotated[
        str | None, typer.Option(help="Read the API key from this variable.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="The API key (prefer --api-key-env).")] = None,
    timeout: Annotated[float, typer.Option(help="Whole-request timeout, seconds.")] = 600.0,
    config: ConfigOption = None,
) -> None:
    """Add or update an upstream provider. Its key is stored encrypted and never shown again."""
    import os

    if (api_key_env is None) == (api_key is None):
        raise fail("give exactly one of --api-key-env VAR or --api-key KEY")
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise fail(f"environment variable {api_key_env} is not set")
    assert api_key is not None
    settings = settings_from(config)
    keyring = keyring_from(settings)
    key = api_key
    in_store(
        settings,
        lambda s: manage.add_provider(
            s, keyring, name=name, kind=kind, base_url=base_url, api_key=key, timeout=timeout
        ),
    )
    typer.echo(f"provider {name} saved")


@providers_app.command("list")
def providers_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List providers (never their keys)."""
    rows = in_store(settings_from(config), queries.list_providers)
    data = [
        {"name": p.name, "kind": p.kind, "base_url": p.base_url, "timeout": p.timeout} for p in rows
    ]
    emit(
        data,
        as_json,
        "\n".join(f"{d['name']}\t{d['kind']}\t{d['base_url']}" for d in data) or "no providers",
    )


@providers_app.command("remove")
def providers_remove(name: str, config: ConfigOption = None) -> None:
    """Remove a provider that serves no models."""
    in_store(settings_from(config), lambda s: manage.remove_provider(s, name=name))
    typer.echo(f"provider {name} removed")


# models


@models_app.command("add")
def models_add(
    model_id: str,
    provider: Annotated[str, typer.Option(help="Provider that serves it.")],
    upstream_model: Annotated[
        str | None, typer.Option(help="Model id sent upstream, if different.")
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown by /v1/models.")] = None,
    alias: Annotated[list[str] | None, typer.Option(help="Another name clients may use.")] = None,
    config: ConfigOption = None,
) -> None:
    """Add or update a model route."""
    in_store(
        settings_from(config),
        lambda s: manage.add_model(
            s,
            model_id=model_id,
            provider=provider,
            upstream_model=upstream_model,
            display_name=display_name,
            aliases=alias or [],
        ),
    )
    typer.echo(f"model {model_id} → {provider}")


@models_app.command("list")
def models_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List model routes."""
    rows = in_store(settings_from(config), queries.list_model_routes)
    data = [
        {
            "id": r.model_id,
            "provider": p.name,
            "upstream_model": r.upstream_model or r.model_id,
            "display_name": r.display_name or r.model_id,
            "aliases": r.aliases or [],
        }
        for r, p in rows
    ]
    text = "\n".join(f"{d['id']}\t{d['provider']}\t{d['upstream_model']}" for d in data)
    emit(data, as_json, text or "no models")


@models_app.command("remove")
def models_remove(model_id: str, config: ConfigOption = None) -> None:
    """Remove a model route."""
    in_store(settings_from(config), lambda s: manage.remove_model(s, model_id=model_id))
    typer.echo(f"model {model_id} removed")


# keys


def key_view(key: VirtualKey) -> dict[str, Any]:
    now = datetime.now(UTC)
    status = "active"
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and key.expires_at <= now:
        status = "expired"
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "models": key.allowed_models,
        "status": status,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "created_at": key.created_at.isoformat(),
        "limits": LimitSpec.describe(key),
    }


def _limit_option(help_text: str) -> Any:
    return typer.Option(help=help_text + " ('off' removes it).")


BudgetUsd = Annotated[str | None, _limit_option("Budget in USD per period")]
BudgetTokens = Annotated[str | None, _limit_option("Budget in tokens per period")]
PeriodOption = Annotated[
    str | None, typer.Option(help="Budget period: 1m, 1h, 1d, 1w, 1mo (default 1mo).")
]
ResetOption = Annotated[
    str | None,
    typer.Option(help="'calendar' (UTC boundaries, default) or 'rolling' (from now on)."),
]
Rpm = Annotated[str | None, _limit_option("Requests per minute")]
Tpm = Annotated[str | None, _limit_option("Tokens per minute")]
MaxConcurrent = Annotated[str | None, _limit_option("Requests in progress at once")]
UserBudgetUsd = Annotated[str | None, _limit_option("Each user's budget in USD per period")]
UserBudgetTokens = Annotated[str | None, _limit_option("Each user's token budget per period")]
UserRpm = Annotated[str | None, _limit_option("Each user's requests per minute")]
UserTpm = Annotated[str | None, _limit_option("Each user's tokens per minute")]
UserMaxConcurrent = Annotated[str | None, _limit_option("Each user's requests at once")]


def limit_spec(arguments: dict[str, Any]) -> LimitSpec:
    """The limit flags among a command's arguments as a spec (flags not given are left out).

    Commands pass `locals()` before anything else is assigned, so the fields are named once,
    by `LimitSpec` itself.
    """
    from pydantic import ValidationError

    from gatepass.config import describe_validation_error

    try:
        given = {k: arguments[k] for k in LimitSpec.model_fields if arguments.get(k) is not None}
        return LimitSpec.model_validate(given)
    except ValidationError as exc:
        raise fail(
            describe_validation_error(exc).replace("invalid configuration", "invalid limits")
        ) from exc


def _print_issued(issued: manage.IssuedKey, as_json: bool, verb: str) -> None:
    view = key_view(issued.key)
    if as_json:
        typer.echo(json.dumps({**view, "secret": issued.secret}, indent=2))
        return
    typer.echo(f"key {issued.key.name} {verb} (models: {','.join(view['models'])}).")
    typer.echo("The secret is shown once; store it now:", err=False)
    typer.echo(issued.secret)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Unique key name.")],
    models: Annotated[str, typer.Option(help="Comma-separated model ids, or '*'.")],
    expires: Annotated[str | None, typer.Option(help="e.g. 30d, 12h, or an ISO date.")] = None,
    budget_usd: BudgetUsd = None,
    budget_tokens: BudgetTokens = None,
    period: PeriodOption = None,
    reset: ResetOption = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    max_concurrent: MaxConcurrent = None,
    per_user_budget_usd: UserBudgetUsd = None,
    per_user_budget_tokens: UserBudgetTokens = None,
    per_user_rpm: UserRpm = None,
    per_user_tpm: UserTpm = None,
    per_user_max_concurrent: UserMaxConcurrent = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a virtual key; its secret is printed once, on the last line."""
    limits = limit_spec(locals())
    settings = settings_from(config)
    keyring = keyring_from(settings)
    issued = in_store(
        settings,
        lambda s: manage.create_key(
            s, keyring, name=name, models=models, expires=expires, limits=limits
        ),
    )
    _print_issued(issued, as_json, "created")


@keys_app.command("update")
def keys_update(
    name: str,
    models: Annotated[str | None, typer.Option(help="New allow-list: model ids or '*'.")] = None,
    expires: Annotated[
        str | None, typer.Option(help="New expiry, e.g. 30d or an ISO date.")
    ] = None,
    managed_settings: Annotated[
        Path | None,
        typer.Option(help="JSON file of Claude Code managed settings for this key's users."),
    ] = None,
    clear_managed_settings: Annotated[
        bool, typer.Option(help="Stop serving managed settings for this key.")
    ] = False,
    budget_usd: BudgetUsd = None,
    budget_tokens: BudgetTokens = None,
    period: PeriodOption = None,
    reset: ResetOption = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    max_concurrent: MaxConcurrent = None,
    per_user_budget_usd: UserBudgetUsd = None,
    per_user_budget_tokens: UserBudgetTokens = None,
    per_user_rpm: UserRpm = None,
    per_user_tpm: UserTpm = None,
    per_user_max_concurrent: UserMaxConcurrent = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a key's models, expiry, managed settings or limits; its secret stays the same."""
    limits = limit_spec(locals())
    settings_doc: dict[str, Any] | None = None
    if managed_settings is not None:
        try:
            settings_doc = json.loads(managed_settings.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise fail(f"{managed_settings}: not a readable JSON file ({exc})") from exc
        if not isinstance(settings_doc, dict):
            raise fail(f"{managed_settings}: managed settings must be a JSON object")
    key = in_store(
        settings_from(config),
        lambda s: manage.update_key(
            s,
            name=name,
            models=models,
            expires=expires,
            managed_settings=settings_doc,
            clear_managed_settings=clear_managed_settings,
            limits=limits,
        ),
    )
    emit(key_view(key), as_json, f"key {name} updated")


@keys_app.command("list")
def keys_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List keys (prefix only; secrets are never shown again)."""
    rows = in_store(settings_from(config), queries.list_keys)
    data = [key_view(k) for k in rows]
    text = "\n".join(
        f"{d['name']}\t{d['prefix']}…\t{d['status']}\t{','.join(d['models'])}" for d in data
    )
    emit(data, as_json, text or "no keys")


@keys_app.command("revoke")
def keys_revoke(name: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Revoke a key; requests with it fail with 401 from then on."""
    key = in_store(settings_from(config), lambda s: manage.revoke_key(s, name=name))
    emit(key_view(key), as_json, f"key {name} revoked")


@keys_app.command("rotate")
def keys_rotate(name: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Give a key a new secret (printed once, on the last line); the old one stops working."""
    settings = settings_from(config)
    keyring = keyring_from(settings)
    issued = in_store(settings, lambda s: manage.rotate_key(s, keyring, name=name))
    _print_issued(issued, as_json, "rotated")


from gatepass.cli import admin as _admin  # noqa: E402, F401  (registers its commands)
from gatepass.cli import identity as _identity  # noqa: E402, F401  (registers its commands)
from gatepass.cli import login as _login  # noqa: E402, F401


def main() -> None:
    app(prog_name="gatepass")


if __name__ == "__main__":  # pragma: no cover
    main()
