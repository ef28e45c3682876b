"""`gatepass admin-tokens|audit`: credentials for the admin API, and the audit trail."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass import manage
from gatepass.admin import views
from gatepass.cli import (
    ConfigOption,
    JsonOption,
    app,
    emit,
    fail,
    in_store,
    keyring_from,
    settings_from,
)
from gatepass.manage import admin_tokens as ops
from gatepass.store import admin_queries
from gatepass.store.db import create_engine, session_maker

tokens_app = typer.Typer(no_args_is_help=True, help="Tokens for the admin API (/admin/api).")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail: who changed what, when.")
app.add_typer(tokens_app, name="admin-tokens")
app.add_typer(audit_app, name="audit")


@tokens_app.command("create")
def admin_tokens_create(
    name: Annotated[str, typer.Option(help="A name for the token (shown in the audit trail).")],
    read_only: Annotated[bool, typer.Option(help="Allow only GET requests.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an admin API token; it is printed once, on the last line."""
    settings = settings_from(config)
    keyring = keyring_from(settings)
    issued = in_store(
        settings, lambda s: ops.create_admin_token(s, keyring, name=name, read_only=read_only)
    )
    if as_json:
        emit({**views.admin_token(issued.token), "token": issued.secret}, True, "")
        return
    scope = "read-only" if issued.token.read_only else "read-write"
    typer.echo(f"admin token {name} ({scope}); shown once:")
    typer.echo(issued.secret)


@tokens_app.command("list")
def admin_tokens_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Admin tokens (prefix only, never the token)."""
    rows = in_store(settings_from(config), ops.list_admin_tokens)
    data = [views.admin_token(t) for t in rows]
    lines = [
        f"{t['name']}\t{t['prefix']}…\t{'read-only' if t['read_only'] else 'read-write'}\t"
        f"{'revoked' if t['revoked_at'] else 'active'}"
        for t in data
    ]
    emit(data, as_json, "\n".join(lines) or "no admin tokens")


@tokens_app.command("revoke")
def admin_tokens_revoke(name: str, config: ConfigOption = None) -> None:
    """Revoke an admin token (refused at once)."""
    in_store(settings_from(config), lambda s: ops.revoke_admin_token(s, name=name))
    typer.echo(f"admin token {name} revoked")


Since = Annotated[str | None, typer.Option(help="From this time: ISO date/time, or 24h, 7d ...")]
Until = Annotated[str | None, typer.Option(help="Before this time (same forms as --since).")]
Action = Annotated[str | None, typer.Option(help="Action, or a prefix ending in '.' (key.).")]
Actor = Annotated[str | None, typer.Option(help="Who: 'cli', an email or 'token:NAME'.")]
Target = Annotated[str | None, typer.Option(help="What was changed (a name, email or id).")]


def _filters(
    since: str | None, until: str | None, action: str | None, actor: str | None, target: str | None
) -> dict[str, Any]:
    try:
        return {
            "since": manage.parse_instant(since) if since else None,
            "until": manage.parse_instant(until) if until else None,
            "action": action,
            "actor": actor,
            "target": target,
        }
    except manage.ManageError as exc:
        raise fail(str(exc)) from exc


@audit_app.command("list")
def audit_list(
    since: Since = None,
    until: Until = None,
    action: Action = None,
    actor: Actor = None,
    target: Target = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Newest events shown.")] = 50,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The newest audit events matching the filters."""
    filters = _filters(since, until, action, actor, target)

    async def read(session: AsyncSession) -> list[dict[str, object]]:
        rows = await admin_queries.list_audit(session, **filters, limit=limit)
        return [views.audit(e) for e in rows]

    data = in_store(settings_from(config), read)
    lines = [
        f"{e['time']}\t{e['actor'] or '-'}\t{e['action']}\t{e['target'] or '-'}\t{e['outcome']}"
        for e in data
    ]
    emit(data, as_json, "\n".join(lines) or "no audit events")


@audit_app.command("export")
def audit_export(
    since: Since = None,
    until: Until = None,
    action: Action = None,
    actor: Actor = None,
    target: Target = None,
    config: ConfigOption = None,
) -> None:
    """Every matching event, oldest first, as JSON lines on standard output."""
    filters = _filters(since, until, action, actor, target)
    settings = settings_from(config)

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            after: int | None = None
            while True:
                async with session_maker(engine)() as session:
                    rows = await admin_queries.list_audit(
                        session,
                        **filters,
                        after_id=after,
                        limit=1000,
                        oldest_first=True,
                    )
                for event in rows:
                    typer.echo(json.dumps(views.audit(event), default=str))
                if len(rows) < 1000:
                    return
                after = rows[-1].id
        finally:
            await engine.dispose()

    asyncio.run(run())
