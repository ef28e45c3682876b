"""`gatepass idps|clients|mappings|users|signing-keys`: who may sign in, and what they get."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

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
from gatepass.manage import identity as ops
from gatepass.manage.audit import record
from gatepass.store import identity_queries as q
from gatepass.store.identity import GroupMapping, IdpConnection, User
from gatepass.store.models import VirtualKey

idps_app = typer.Typer(no_args_is_help=True, help="Corporate identity providers (OIDC).")
clients_app = typer.Typer(no_args_is_help=True, help="Applications that sign users in (OAuth).")
mappings_app = typer.Typer(no_args_is_help=True, help="IdP groups and users → virtual keys.")
users_app = typer.Typer(no_args_is_help=True, help="People who have signed in.")
signing_app = typer.Typer(no_args_is_help=True, help="Keys Gatepass signs its tokens with.")
app.add_typer(idps_app, name="idps")
app.add_typer(clients_app, name="clients")
app.add_typer(mappings_app, name="mappings")
app.add_typer(users_app, name="users")
app.add_typer(signing_app, name="signing-keys")


def idp_view(idp: IdpConnection, public_url: str) -> dict[str, Any]:
    return {
        "name": idp.name,
        "issuer": idp.issuer,
        "client_id": idp.client_id,
        "has_client_secret": idp.client_secret_encrypted is not None,
        "scopes": idp.scopes,
        "groups_claim": idp.groups_claim,
        "allowed_domains": idp.allowed_domains,
        "require_verified_email": idp.require_verified_email,
        "audiences": idp.audiences,
        "redirect_uri": f"{public_url}/sso/callback/{idp.name}",
    }


@idps_app.command("add")
def idps_add(
    name: str,
    issuer: Annotated[str, typer.Option(help="The IdP's issuer URL (discovery is read from it).")],
    client_id: Annotated[str, typer.Option(help="Gatepass's client id at the IdP.")],
    client_secret_env: Annotated[
        str | None, typer.Option(help="Read the client secret from this variable.")
    ] = None,
    client_secret: Annotated[str | None, typer.Option(help="The client secret.")] = None,
    scopes: Annotated[str, typer.Option(help="Space-separated scopes.")] = "openid profile email",
    groups_claim: Annotated[str, typer.Option(help="Claim (dotted path) with groups.")] = "groups",
    allowed_domain: Annotated[
        list[str] | None, typer.Option(help="Email domain allowed to sign in (repeatable).")
    ] = None,
    require_verified_email: Annotated[
        bool, typer.Option(help="Refuse sign-ins whose email the IdP has not verified.")
    ] = True,
    audience: Annotated[
        list[str] | None,
        typer.Option(help="Audience accepted when the IdP's own tokens are presented directly."),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add or update an IdP connection; prints the redirect URI to register at the IdP."""
    if client_secret_env is not None and client_secret is not None:
        raise fail("give at most one of --client-secret-env and --client-secret")
    if client_secret_env is not None:
        client_secret = os.environ.get(client_secret_env)
        if not client_secret:
            raise fail(f"environment variable {client_secret_env} is not set")
    settings = settings_from(config)
    keyring = keyring_from(settings)
    secret = client_secret
    idp = in_store(
        settings,
        lambda s: ops.add_idp(
            s,
            keyring,
            name=name,
            issuer=issuer,
            client_id=client_id,
            client_secret=secret,
            scopes=scopes,
            groups_claim=groups_claim,
            allowed_domains=allowed_domain or [],
            require_verified_email=require_verified_email,
            audiences=audience or [],
        ),
    )
    view = idp_view(idp, settings.public_url)
    emit(
        view,
        as_json,
        f"IdP {name} saved. Register this redirect URI at the IdP:\n{view['redirect_uri']}",
    )


@idps_app.command("list")
def idps_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List IdP connections (never their client secrets)."""
    settings = settings_from(config)
    rows = in_store(settings, q.list_idps)
    data = [idp_view(idp, settings.public_url) for idp in rows]
    text = "\n".join(f"{d['name']}\t{d['issuer']}\t{d['client_id']}" for d in data)
    emit(data, as_json, text or "no IdPs")


@idps_app.command("remove")
def idps_remove(name: str, config: ConfigOption = None) -> None:
    """Remove an IdP connection, with its users' mappings."""
    in_store(settings_from(config), lambda s: ops.remove_idp(s, name=name))
    typer.echo(f"IdP {name} removed")


@clients_app.command("add")
def clients_add(
    client_id: str,
    redirect_uri: Annotated[
        list[str], typer.Option(help="Allowed redirect URI (repeatable); loopback: any port.")
    ],
    public: Annotated[
        bool, typer.Option("--public/--confidential", help="Public clients have no secret.")
    ] = True,
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an application (e.g. claude-desktop) that signs users in through Gatepass."""
    settings = settings_from(config)
    keyring = keyring_from(settings)
    client, secret = in_store(
        settings,
        lambda s: ops.add_client(
            s, keyring, client_id=client_id, redirect_uris=redirect_uri, public=public, name=name
        ),
    )
    view = {
        "client_id": client.client_id,
        "public": client.public,
        "redirect_uris": client.redirect_uris,
    }
    if as_json:
        emit({**view, "client_secret": secret}, True, "")
        return
    typer.echo(f"client {client_id} saved ({'public' if client.public else 'confidential'}).")
    if secret is not None:
        typer.echo("The client secret is shown once; store it now:")
        typer.echo(secret)


@clients_app.command("list")
def clients_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List registered clients."""
    rows = in_store(settings_from(config), q.list_clients)
    data: list[dict[str, Any]] = [
        {"client_id": c.client_id, "public": c.public, "redirect_uris": c.redirect_uris}
        for c in rows
    ]
    text = "\n".join(f"{d['client_id']}\t{' '.join(d['redirect_uris'])}" for d in data)
    emit(data, as_json, text or "no clients")


@clients_app.command("remove")
def clients_remove(client_id: str, config: ConfigOption = None) -> None:
    """Remove a client."""
    in_store(settings_from(config), lambda s: ops.remove_client(s, client_id=client_id))
    typer.echo(f"client {client_id} removed")


def mapping_view(mapping: GroupMapping, idp: IdpConnection, key: VirtualKey) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "idp": idp.name,
        "group": mapping.group,
        "email": mapping.email,
        "key": key.name,
        "priority": mapping.priority,
        "role": mapping.role,
    }


@mappings_app.command("add")
def mappings_add(
    idp: Annotated[str, typer.Option(help="IdP connection name.")],
    key: Annotated[str, typer.Option(help="Virtual key name.")],
    group: Annotated[str | None, typer.Option(help="IdP group.")] = None,
    email: Annotated[
        str | None, typer.Option(help="One person's email instead of a group.")
    ] = None,
    priority: Annotated[int, typer.Option(help="Lower wins when several match.")] = 100,
    role: Annotated[str, typer.Option(help="user or admin.")] = "user",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Map an IdP group (or one user) to a virtual key."""
    mapping = in_store(
        settings_from(config),
        lambda s: ops.add_mapping(
            s, idp=idp, key=key, group=group, email=email, priority=priority, role=role
        ),
    )
    who = f"group {group}" if group is not None else f"user {email}"
    emit({"id": mapping.id}, as_json, f"mapping {mapping.id}: {idp} {who} → key {key}")


@mappings_app.command("list")
def mappings_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List mappings in the order they are tried."""
    rows = in_store(settings_from(config), q.list_mappings)
    data = [mapping_view(m, i, k) for m, i, k in rows]
    text = "\n".join(
        f"{d['id']}\t{d['idp']}\t{'group ' + d['group'] if d['group'] else 'email ' + d['email']}"
        f"\t→ {d['key']}\tpriority {d['priority']}\t{d['role']}"
        for d in data
    )
    emit(data, as_json, text or "no mappings")


@mappings_app.command("remove")
def mappings_remove(mapping_id: int, config: ConfigOption = None) -> None:
    """Remove a mapping; people it mapped lose access at their next refresh."""
    in_store(settings_from(config), lambda s: ops.remove_mapping(s, mapping_id=mapping_id))
    typer.echo(f"mapping {mapping_id} removed")


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.public_id,
        "email": user.email,
        "name": user.name,
        "issuer": user.issuer,
        "subject": user.subject,
        "groups": user.groups,
        "disabled": user.disabled,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


@users_app.command("list")
def users_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List people who have signed in."""
    rows = in_store(settings_from(config), q.list_users)
    data = [user_view(u) for u in rows]
    text = "\n".join(
        f"{d['email']}\t{'disabled' if d['disabled'] else 'active'}\t{','.join(d['groups'])}"
        for d in data
    )
    emit(data, as_json, text or "no users")


@users_app.command("disable")
def users_disable(email: str, config: ConfigOption = None) -> None:
    """Disable a user: their tokens fail on the next request and refresh is refused."""
    in_store(settings_from(config), lambda s: ops.set_user_disabled(s, email=email, disabled=True))
    typer.echo(f"user {email} disabled")


@users_app.command("enable")
def users_enable(email: str, config: ConfigOption = None) -> None:
    """Re-enable a disabled user."""
    in_store(settings_from(config), lambda s: ops.set_user_disabled(s, email=email, disabled=False))
    typer.echo(f"user {email} enabled")


@signing_app.command("rotate")
def signing_keys_rotate(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Start signing with a new key; the old one stays published for `sign_in.signing_key_grace`."""
    from gatepass.oauth import rotate_signing_key

    settings = settings_from(config)
    keyring = keyring_from(settings)
    grace = settings.sign_in.signing_key_grace

    async def rotate(session: Any) -> str:
        kid = await rotate_signing_key(session, keyring, grace)
        record(session, "signing_key.rotate", kid)
        return kid

    kid = in_store(settings, rotate)
    emit(
        {"kid": kid, "grace_seconds": grace},
        as_json,
        f"new signing key {kid}; the previous one retires in {grace} s",
    )
