"""`/admin/api/...`: the admin REST API, the CLI's twin (both call `gatepass.manage`).

Every endpoint is one `Endpoint` in `ENDPOINTS`; the same table builds the routes and the
OpenAPI document, so neither can drift from the other. Lists page with `limit`/`offset`
and answer `{"data": [...], "pagination": {...}}`. Secrets are write-only: a new key's
secret is in its creation (or rotation) response and nowhere else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gatepass import manage
from gatepass.admin import views
from gatepass.admin.auth import AdminAuth, Principal
from gatepass.admin.errors import AdminError, render
from gatepass.limits.spec import LimitSpec
from gatepass.manage import admin_tokens
from gatepass.manage import identity as identity_ops
from gatepass.manage.audit import acting_as, record
from gatepass.store import admin_queries, identity_queries, queries
from gatepass.store.admin_queries import LogFilter
from gatepass.store.types import utcnow

if TYPE_CHECKING:
    from gatepass.runtime import Gateway

log = logging.getLogger("gatepass.admin")

PREFIX = "/admin/api"
MAX_PAGE = 1000
SEARCH_LIMIT = 1000  # requests a content search can match
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


@dataclass
class Call:
    """What a handler gets: the request, its admin, a session (committed after), its body."""

    request: Request
    principal: Principal
    session: AsyncSession
    gateway: Gateway
    body: Any = None

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        return value if value not in (None, "") else None


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under PREFIX, Starlette syntax
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    paged: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def writes(self) -> bool:
        return self.method not in ("GET", "HEAD")


# bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyCreate(_Body):
    name: str
    models: list[str] | str = "*"
    expires: str | None = None
    limits: LimitSpec | None = None


class KeyUpdate(_Body):
    models: list[str] | str | None = None
    expires: str | None = None
    limits: LimitSpec | None = None


class MappingCreate(_Body):
    idp: str
    key: str
    group: str | None = None
    email: str | None = None
    priority: int = 100
    role: str = "user"


class MappingUpdate(_Body):
    priority: int


class IdpCreate(_Body):
    name: str
    issuer: str
    client_id: str
    client_secret: str | None = None  # write-only
    scopes: str = "openid profile email"
    groups_claim: str = "groups"
    allowed_domains: list[str] = []
    require_verified_email: bool = True
    audiences: list[str] = []


class ProviderCreate(_Body):
    name: str
    kind: str = "anthropic"
    base_url: str
    api_key: str  # write-only
    timeout: float = Field(default=600.0, gt=0)
    extra_headers: dict[str, str] = {}


class ModelCreate(_Body):
    id: str
    provider: str
    upstream_model: str | None = None
    display_name: str | None = None
    aliases: list[str] = []


class ClientCreate(_Body):
    client_id: str
    redirect_uris: list[str]
    public: bool = True
    name: str | None = None


# helpers


def _page(call: Call, items: Sequence[Any], *, total: int | None = None) -> Response:
    """One page of an in-memory list (admin objects are few)."""
    limit, offset = _limits(call)
    window = list(items[offset : offset + limit])
    more = offset + limit < len(items)
    return _paged(window, limit, offset, more, len(items) if total is None else total)


def _limits(call: Call) -> tuple[int, int]:
    try:
        limit = int(call.query("limit") or call.gateway.settings.admin.page_size)
        offset = int(call.query("offset") or 0)
    except ValueError as exc:
        raise AdminError(400, "invalid_request", "limit and offset must be integers") from exc
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise AdminError(
            400, "invalid_request", f"limit must be 1..{MAX_PAGE} and offset at least 0"
        )
    return limit, offset


def _paged(data: list[Any], limit: int, offset: int, more: bool, total: int | None) -> Response:
    return JSONResponse(
        {
            "data": data,
            "pagination": {
                "limit": limit,
                "offset": offset,
                "total": total,
                "next_offset": offset + limit if more else None,
            },
        }
    )


def _time_param(call: Call, name: str) -> datetime | None:
    value = call.query(name)
    if value is None:
        return None
    try:
        return manage.parse_instant(value)
    except manage.ManageError as exc:
        raise AdminError(400, "invalid_request", str(exc), {"parameter": name}) from exc


def _int_param(call: Call, name: str) -> int | None:
    value = call.query(name)
    try:
        return None if value is None else int(value)
    except ValueError as exc:
        raise AdminError(400, "invalid_request", f"{name} must be an integer") from exc


def _float_param(call: Call, name: str) -> float | None:
    value = call.query(name)
    try:
        return None if value is None else float(value)
    except ValueError as exc:
        raise AdminError(400, "invalid_request", f"{name} must be a number") from exc


def _created(data: dict[str, Any]) -> Response:
    return JSONResponse(data, status_code=201)


# keys


async def list_keys(call: Call) -> Response:
    return _page(call, [views.key(k) for k in await queries.list_keys(call.session)])


async def get_key(call: Call) -> Response:
    key = await queries.get_key_by_name(call.session, name=call.param("name"))
    if key is None:
        raise AdminError(404, "not_found", f"no key named {call.param('name')!r}")
    return JSONResponse(views.key(key))


async def create_key(call: Call) -> Response:
    body: KeyCreate = call.body
    issued = await manage.create_key(
        call.session,
        call.gateway.keyring,
        name=body.name,
        models=body.models,
        expires=body.expires,
        limits=body.limits,
    )
    return _created({**views.key(issued.key), "secret": issued.secret})


async def update_key(call: Call) -> Response:
    body: KeyUpdate = call.body
    key = await manage.update_key(
        call.session,
        name=call.param("name"),
        models=body.models,
        expires=body.expires,
        limits=body.limits,
    )
    return JSONResponse(views.key(key))


async def revoke_key(call: Call) -> Response:
    return JSONResponse(views.key(await manage.revoke_key(call.session, name=call.param("name"))))


async def rotate_key(call: Call) -> Response:
    issued = await manage.rotate_key(call.session, call.gateway.keyring, name=call.param("name"))
    return JSONResponse({**views.key(issued.key), "secret": issued.secret})


# mappings


async def list_mappings(call: Call) -> Response:
    rows = await identity_queries.list_mappings(call.session)
    return _page(call, [views.mapping(m, i, k) for m, i, k in rows])


async def _mapping_view(call: Call, mapping_id: int | None) -> dict[str, Any]:
    for m, i, k in await identity_queries.list_mappings(call.session):
        if m.id == mapping_id:
            return views.mapping(m, i, k)
    raise AdminError(404, "not_found", f"no mapping with id {mapping_id}")


async def create_mapping(call: Call) -> Response:
    body: MappingCreate = call.body
    mapping = await identity_ops.add_mapping(call.session, **body.model_dump())
    return _created(await _mapping_view(call, mapping.id))


def _mapping_id(call: Call) -> int:
    try:
        return int(call.param("mapping_id"))
    except ValueError as exc:
        raise AdminError(404, "not_found", "no such mapping") from exc


async def update_mapping(call: Call) -> Response:
    body: MappingUpdate = call.body
    mapping = await identity_ops.set_mapping_priority(
        call.session, mapping_id=_mapping_id(call), priority=body.priority
    )
    return JSONResponse(await _mapping_view(call, mapping.id))


async def delete_mapping(call: Call) -> Response:
    await identity_ops.remove_mapping(call.session, mapping_id=_mapping_id(call))
    return Response(status_code=204)


# IdPs, providers, models, clients


async def list_idps(call: Call) -> Response:
    url = call.gateway.settings.public_url
    return _page(call, [views.idp(i, url) for i in await identity_queries.list_idps(call.session)])


async def create_idp(call: Call) -> Response:
    body: IdpCreate = call.body
    idp = await identity_ops.add_idp(call.session, call.gateway.keyring, **body.model_dump())
    return _created(views.idp(idp, call.gateway.settings.public_url))


async def delete_idp(call: Call) -> Response:
    await identity_ops.remove_idp(call.session, name=call.param("name"))
    return Response(status_code=204)


async def list_providers(call: Call) -> Response:
    return _page(call, [views.provider(p) for p in await queries.list_providers(call.session)])


async def create_provider(call: Call) -> Response:
    body: ProviderCreate = call.body
    provider = await manage.add_provider(call.session, call.gateway.keyring, **body.model_dump())
    return _created(views.provider(provider))


async def delete_provider(call: Call) -> Response:
    await manage.remove_provider(call.session, name=call.param("name"))
    return Response(status_code=204)


async def list_models(call: Call) -> Response:
    rows = await queries.list_model_routes(call.session)
    return _page(call, [views.model(r, p) for r, p in rows])


async def create_model(call: Call) -> Response:
    body: ModelCreate = call.body
    route = await manage.add_model(
        call.session,
        model_id=body.id,
        provider=body.provider,
        upstream_model=body.upstream_model,
        display_name=body.display_name,
        aliases=body.aliases,
    )
    owner = await queries.get_provider(call.session, name=body.provider)
    assert owner is not None
    return _created(views.model(route, owner))


async def delete_model(call: Call) -> Response:
    await manage.remove_model(call.session, model_id=call.param("model_id"))
    return Response(status_code=204)


async def list_clients(call: Call) -> Response:
    return _page(call, [views.client(c) for c in await identity_queries.list_clients(call.session)])


async def create_client(call: Call) -> Response:
    body: ClientCreate = call.body
    client, secret = await identity_ops.add_client(
        call.session, call.gateway.keyring, **body.model_dump()
    )
    data = views.client(client)
    if secret is not None:
        data["secret"] = secret  # a confidential client's secret, this once
    return _created(data)


async def delete_client(call: Call) -> Response:
    await identity_ops.remove_client(call.session, client_id=call.param("client_id"))
    return Response(status_code=204)


# users


async def list_users(call: Call) -> Response:
    return _page(call, [views.user(u) for u in await identity_queries.list_users(call.session)])


async def _set_disabled(call: Call, disabled: bool) -> Response:
    users = await identity_ops.set_user_disabled(
        call.session, email=call.param("email"), disabled=disabled
    )
    return JSONResponse({"data": [views.user(u) for u in users]})


async def disable_user(call: Call) -> Response:
    return await _set_disabled(call, True)


async def enable_user(call: Call) -> Response:
    return await _set_disabled(call, False)


# admin sessions


async def list_sessions(call: Call) -> Response:
    rows = await admin_queries.list_admin_sessions(call.session, now=utcnow())
    return _page(call, [views.admin_session(r) for r in rows])


async def revoke_session(call: Call) -> Response:
    try:
        row_id = int(call.param("session_id"))
    except ValueError as exc:
        raise AdminError(404, "not_found", "no such admin session") from exc
    await admin_tokens.revoke_admin_session(call.session, session_id=row_id)
    return Response(status_code=204)


# audit and logs


async def list_audit(call: Call) -> Response:
    filters: dict[str, Any] = {
        "action": call.query("action"),
        "actor": call.query("actor"),
        "target": call.query("target"),
        "since": _time_param(call, "since"),
        "until": _time_param(call, "until"),
    }
    if call.query("format") == "jsonl":
        return await _export_audit(call, filters)
    limit, offset = _limits(call)
    rows = await admin_queries.list_audit(call.session, **filters, limit=limit + 1, offset=offset)
    data = [views.audit(e) for e in rows[:limit]]
    return _paged(data, limit, offset, len(rows) > limit, None)


async def _export_audit(call: Call, filters: dict[str, Any]) -> Response:
    """Every matching event, oldest first, one JSON object per line."""
    lines: list[str] = []
    after: int | None = None
    while True:
        rows = await admin_queries.list_audit(
            call.session, **filters, after_id=after, limit=MAX_PAGE, oldest_first=True
        )
        lines.extend(json.dumps(views.audit(e), default=str) + "\n" for e in rows)
        if len(rows) < MAX_PAGE:
            break
        after = rows[-1].id
    return StreamingResponse(iter(lines), media_type="application/jsonl")


def log_filter(call: Call) -> LogFilter:
    return LogFilter(
        since=_time_param(call, "since"),
        until=_time_param(call, "until"),
        provider=call.query("provider"),
        model=call.query("model"),
        user=call.query("user"),
        key=call.query("key"),
        status=_int_param(call, "status"),
        min_latency_ms=_float_param(call, "min_latency_ms"),
        max_latency_ms=_float_param(call, "max_latency_ms"),
        min_tokens=_int_param(call, "min_tokens"),
        after_id=_int_param(call, "after_id"),
    )


async def list_logs(call: Call) -> Response:
    chosen = log_filter(call)
    limit, offset = _limits(call)
    text_query = call.query("q")
    if text_query:  # full-text search over captured conversations (logs.capture = "full")
        ids = await admin_queries.search_request_ids(
            call.session, text_query=text_query, limit=SEARCH_LIMIT
        )
        chosen = replace(chosen, request_ids=ids)
    rows = await admin_queries.search_request_logs(
        call.session, chosen, limit=limit + 1, offset=offset
    )
    totals = await admin_queries.request_log_totals(call.session, chosen)
    page = _paged(
        [views.request_log(r) for r in rows[:limit]],
        limit,
        offset,
        len(rows) > limit,
        totals["requests"],
    )
    body = json.loads(bytes(page.body))
    body["totals"] = totals
    return JSONResponse(body)


async def get_log(call: Call) -> Response:
    try:
        log_id = int(call.param("log_id"))
    except ValueError as exc:
        raise AdminError(404, "not_found", "no such log entry") from exc
    row = await admin_queries.get_request_log(call.session, log_id=log_id)
    if row is None:
        raise AdminError(404, "not_found", f"no log entry {log_id}")
    return JSONResponse(views.request_log(row))


PAGE = ("limit", "offset")
AUDIT_QUERY = ("action", "actor", "target", "since", "until", "format", *PAGE)
LOG_QUERY = (
    "since", "until", "provider", "model", "user", "key", "status",
    "min_latency_ms", "max_latency_ms", "min_tokens", "after_id", "q", *PAGE,
)  # fmt: skip

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/keys", list_keys, "List virtual keys", query=PAGE, paged=True),
    Endpoint("POST", "/keys", create_key, "Create a key (its secret is returned once)", KeyCreate),
    Endpoint("GET", "/keys/{name}", get_key, "One key"),
    Endpoint("PATCH", "/keys/{name}", update_key, "Change models, expiry or limits", KeyUpdate),
    Endpoint("POST", "/keys/{name}/revoke", revoke_key, "Revoke a key"),
    Endpoint("POST", "/keys/{name}/rotate", rotate_key, "New secret (returned once)"),
    Endpoint("GET", "/mappings", list_mappings, "List mappings", query=PAGE, paged=True),
    Endpoint("POST", "/mappings", create_mapping, "Map a group or email to a key", MappingCreate),
    Endpoint("PATCH", "/mappings/{mapping_id}", update_mapping, "Change priority", MappingUpdate),
    Endpoint("DELETE", "/mappings/{mapping_id}", delete_mapping, "Remove a mapping"),
    Endpoint("GET", "/idps", list_idps, "List IdP connections", query=PAGE, paged=True),
    Endpoint("POST", "/idps", create_idp, "Add or update an IdP connection", IdpCreate),
    Endpoint("DELETE", "/idps/{name}", delete_idp, "Remove an IdP connection"),
    Endpoint("GET", "/providers", list_providers, "List providers", query=PAGE, paged=True),
    Endpoint("POST", "/providers", create_provider, "Add or update a provider", ProviderCreate),
    Endpoint("DELETE", "/providers/{name}", delete_provider, "Remove a provider"),
    Endpoint("GET", "/models", list_models, "List model routes", query=PAGE, paged=True),
    Endpoint("POST", "/models", create_model, "Add or update a model route", ModelCreate),
    Endpoint("DELETE", "/models/{model_id:path}", delete_model, "Remove a model route"),
    Endpoint("GET", "/clients", list_clients, "List OAuth clients", query=PAGE, paged=True),
    Endpoint("POST", "/clients", create_client, "Register an OAuth client", ClientCreate),
    Endpoint("DELETE", "/clients/{client_id}", delete_client, "Remove an OAuth client"),
    Endpoint("GET", "/users", list_users, "List users", query=PAGE, paged=True),
    Endpoint("POST", "/users/{email}/disable", disable_user, "Disable a user"),
    Endpoint("POST", "/users/{email}/enable", enable_user, "Enable a user"),
    Endpoint("GET", "/sessions", list_sessions, "Admin browser sessions", query=PAGE, paged=True),
    Endpoint("DELETE", "/sessions/{session_id}", revoke_session, "End an admin session now"),
    Endpoint("GET", "/audit", list_audit, "Audit events (format=jsonl exports)", query=AUDIT_QUERY,
             paged=True),
    Endpoint("GET", "/logs", list_logs, "Request logs with totals", query=LOG_QUERY, paged=True),
    Endpoint("GET", "/logs/{log_id}", get_log, "One request log entry"),
)  # fmt: skip


def _manage_error(error: manage.ManageError) -> AdminError:
    message = str(error)
    if message.startswith("no "):
        return AdminError(404, "not_found", message)
    if "already" in message or "still" in message:
        return AdminError(409, "conflict", message)
    return AdminError(400, "invalid_request", message)


class AdminApi:
    """Runs an endpoint: authenticate, authorise, parse, call, commit, render errors."""

    def __init__(self, gateway: Gateway, auth: AdminAuth) -> None:
        self.gateway = gateway
        self.auth = auth

    def wrap(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                return await self._run(endpoint, request)
            except AdminError as error:
                return render(error)

        return handle

    async def _run(self, endpoint: Endpoint, request: Request) -> Response:
        principal = await self.auth.authenticate(request)
        ip = request.client.host if request.client else None
        try:
            if endpoint.writes:
                self.auth.check_write(principal, request, None)
            body = await self._body(endpoint, request)
            async with self.gateway.sessions() as session:
                call = Call(request, principal, session, self.gateway, body)
                try:
                    with acting_as(principal.actor, ip):
                        response = await endpoint.handler(call)
                except manage.ManageError as exc:
                    raise _manage_error(exc) from exc
                await session.commit()
        except AdminError as error:
            if endpoint.writes:  # refused changes are part of the trail too
                await self._refused(endpoint, request, principal, error, ip)
            raise
        if endpoint.writes:
            await self.gateway.check_change_epoch()  # this process sees its own change now
        response.headers["cache-control"] = "no-store"
        return response

    async def _refused(
        self,
        endpoint: Endpoint,
        request: Request,
        principal: Principal,
        error: AdminError,
        ip: str | None,
    ) -> None:
        """One audit event for a refused change, in its own transaction (never the body)."""
        outcome = "denied" if error.status in (401, 403) else "failure"
        action = f"api.{endpoint.handler.__name__}"
        target = "/".join(str(v) for v in request.path_params.values()) or None
        try:
            async with self.gateway.sessions() as session:
                with acting_as(principal.actor, ip):
                    record(
                        session,
                        action,
                        target,
                        outcome=outcome,
                        extra={"status": error.status, "error": error.type},
                    )
                await session.commit()
        except Exception:
            log.exception("could not record a refused admin change")

    async def _body(self, endpoint: Endpoint, request: Request) -> Any:
        if endpoint.body is None:
            return None
        try:
            raw = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise AdminError(400, "invalid_request", "The body is not valid JSON.") from exc
        try:
            return endpoint.body.model_validate(raw)
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            raise AdminError(
                400, "invalid_request", "The body does not fit this endpoint.", {"errors": details}
            ) from exc

    def routes(self) -> list[Route]:
        by_path: dict[str, list[Endpoint]] = {}
        for endpoint in ENDPOINTS:
            by_path.setdefault(endpoint.path, []).append(endpoint)
        routes = [Route(PREFIX + "/openapi.json", self.openapi, methods=["GET"])]
        for path, endpoints in by_path.items():
            routes.append(Route(PREFIX + path, self._dispatch(endpoints), methods=ALL_METHODS))
        routes.append(Route(PREFIX + "/{rest:path}", self._not_found, methods=ALL_METHODS))
        return routes

    def _dispatch(self, endpoints: list[Endpoint]) -> Callable[[Request], Awaitable[Response]]:
        handlers = {e.method: self.wrap(e) for e in endpoints}

        async def dispatch(request: Request) -> Response:
            handler = handlers.get(request.method)
            if handler is None:
                return render(AdminError(405, "method_not_allowed", "Method not allowed here."))
            return await handler(request)

        return dispatch

    async def _not_found(self, request: Request) -> Response:
        try:
            await self.auth.authenticate(request)
        except AdminError as error:
            return render(error)
        return render(AdminError(404, "not_found", "No such admin API endpoint."))

    async def openapi(self, request: Request) -> Response:
        from gatepass.admin.openapi import document

        try:
            await self.auth.authenticate(request)
        except AdminError as error:
            return render(error)
        return JSONResponse(document(ENDPOINTS, PREFIX))
