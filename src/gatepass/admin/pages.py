"""`/admin`: sign in through the IdP, then server-rendered pages for the security team.

Forms post back with the session's CSRF token; each action calls the admin API's handlers
through `AdminApi` semantics (same `manage` functions, same audit trail).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gatepass import manage
from gatepass.admin import views
from gatepass.admin.auth import CSRF_FIELD, SESSION_COOKIE, AdminAuth, Principal
from gatepass.admin.errors import AdminError
from gatepass.identity import SignedIn
from gatepass.limits.spec import LimitSpec
from gatepass.manage import identity as identity_ops
from gatepass.manage.audit import acting_as
from gatepass.policy.mappings import resolve_mapping
from gatepass.sso import audit as sso_audit
from gatepass.store import admin_queries, identity_queries, queries
from gatepass.web import page

if TYPE_CHECKING:
    from gatepass.runtime import Gateway

HOME = "/admin/keys"
SAFE_NEXT = ("/admin", "/logs")


def _safe_next(value: Any) -> str:
    if isinstance(value, str) and value.startswith(SAFE_NEXT) and "//" not in value:
        return value
    return HOME


class AdminPages:
    def __init__(self, gateway: Gateway, auth: AdminAuth) -> None:
        self.gateway = gateway
        self.auth = auth

    def routes(self) -> list[Route]:
        return [
            Route("/admin", self.index, methods=["GET"]),
            Route("/admin/signout", self.sign_out, methods=["POST"]),
            Route("/admin/keys", self.keys, methods=["GET", "POST"]),
            Route("/admin/mappings", self.mappings, methods=["GET", "POST"]),
            Route("/admin/idps", self.idps, methods=["GET"]),
            Route("/admin/users", self.users, methods=["GET", "POST"]),
            Route("/admin/audit", self.audit, methods=["GET"]),
        ]

    # sign-in

    async def complete(self, request: Request, payload: dict[str, Any], who: SignedIn) -> Response:
        """The IdP vouched for `who`: admins get a fresh session, others a clear refusal."""
        if who.role != "admin":
            await sso_audit.record(
                self.gateway.sessions,
                action="admin.denied",
                outcome="denied",
                idp_name=who.idp_name,
                actor=who.email,
                request=request,
                reason="not_admin",
            )
            return self.error(403, "Not an administrator", "Your account has no admin role.")
        response = RedirectResponse(_safe_next(payload.get("next")), status_code=303)
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            await self.auth.end_session(response, old)  # a new id at every sign-in
        await self.auth.start_session(response, user_id=who.user_id, email=who.email)
        await sso_audit.record(
            self.gateway.sessions,
            action="admin.sign_in",
            outcome="ok",
            idp_name=who.idp_name,
            actor=who.email,
            request=request,
        )
        return response

    async def principal(self, request: Request, *, redirect: bool = True) -> Principal | Response:
        """The signed-in admin, or the response to send instead (sign-in or refusal)."""
        session_id = request.cookies.get(SESSION_COOKIE)
        try:
            principal = await self.auth.session(session_id) if session_id else None
        except AdminError as error:
            return self.error(error.status, "Not an administrator", error.message)
        if principal is None and not redirect:
            return JSONResponse({"error": "sign in at /admin"}, status_code=401)
        if principal is None:
            started: Response = await self.gateway.sso.begin(
                request, purpose="admin", payload={"next": request.url.path}
            )
            return started
        return principal

    async def index(self, request: Request) -> Response:
        found = await self.principal(request)
        if isinstance(found, Response):
            return found
        return RedirectResponse(HOME, status_code=303)

    async def sign_out(self, request: Request) -> Response:
        found = await self.principal(request)
        if isinstance(found, Response):
            return found
        form = await request.form()
        try:
            self.auth.check_write(found, request, str(form.get(CSRF_FIELD, "")))
        except AdminError as error:
            return self.error(error.status, "Refused", error.message)
        response = self.error(200, "Signed out", "You are signed out of the admin pages.")
        await self.auth.end_session(response, found.session_id)
        return response

    def error(self, status: int, title: str, message: str) -> Response:
        return page(
            "message.html", {"title": title, "message": message, "error": status >= 400},
            status=status,
        )  # fmt: skip

    async def _form(self, request: Request, principal: Principal) -> dict[str, str] | Response:
        form = await request.form()
        values = {k: str(v) for k, v in form.items()}
        try:
            self.auth.check_write(principal, request, values.get(CSRF_FIELD))
        except AdminError as error:
            return self.error(error.status, "Refused", error.message)
        return values

    def _render(self, template: str, principal: Principal, **context: Any) -> Response:
        status = 400 if context.get("error") else 200
        return page(
            template,
            {"csrf_token": principal.csrf_token, "admin": principal.actor, **context},
            status=status,
        )

    async def _act(self, request: Request, principal: Principal, action: Any) -> str | None:
        """Run a change as this admin; the operator's error sentence, or None."""
        ip = request.client.host if request.client else None
        try:
            async with self.gateway.sessions() as session:
                with acting_as(principal.actor, ip):
                    result = await action(session)
                await session.commit()
        except manage.ManageError as exc:
            return str(exc)
        await self.gateway.check_change_epoch()
        return result if isinstance(result, str) else None

    # keys

    async def keys(self, request: Request) -> Response:
        found = await self.principal(request)
        if isinstance(found, Response):
            return found
        error, secret = None, None
        if request.method == "POST":
            form = await self._form(request, found)
            if isinstance(form, Response):
                return form
            issued: list[str] = []

            async def change(session: Any) -> None:
                if form.get("action") == "revoke":
                    await manage.revoke_key(session, name=form.get("name", ""))
                    return
                limits = {
                    k: v for k, v in form.items() if k in LimitSpec.model_fields and v.strip()
                }
                try:
                    spec = LimitSpec.model_validate(limits)
                except ValueError as exc:
                    raise manage.ManageError(f"invalid limits: {exc}") from exc
                made = await manage.create_key(
                    session,
                    self.gateway.keyring,
                    name=form.get("name", "").strip(),
                    models=form.get("models", "*"),
                    expires=form.get("expires") or None,
                    limits=spec,
                )
                issued.append(made.secret)

            error = await self._act(request, found, change)
            secret = issued[0] if issued and error is None else None
        async with self.gateway.sessions() as session:
            rows = [views.key(k) for k in await queries.list_keys(session)]
            usage = await admin_queries.usage_by_key(session)
        return self._render(
            "admin/keys.html", found, keys=rows, usage=usage, error=error, secret=secret
        )

    # mappings

    async def mappings(self, request: Request) -> Response:
        found = await self.principal(request)
        if isinstance(found, Response):
            return found
        error, check = None, None
        if request.method == "POST":
            form = await self._form(request, found)
            if isinstance(form, Response):
                return form
            action = form.get("action")

            async def change(session: Any) -> None:
                if action == "remove":
                    await identity_ops.remove_mapping(session, mapping_id=_int(form, "id"))
                elif action == "priority":
                    await identity_ops.set_mapping_priority(
                        session, mapping_id=_int(form, "id"), priority=_int(form, "priority")
                    )
                else:
                    target = form.get("target", "").strip()
                    by_email = "@" in target
                    await identity_ops.add_mapping(
                        session,
                        idp=form.get("idp", ""),
                        key=form.get("key", ""),
                        group=None if by_email else target,
                        email=target if by_email else None,
                        priority=_int(form, "priority", 100),
                        role=form.get("role", "user"),
                    )

            if action == "check":
                check = await self._who_gets_what(form)
            else:
                error = await self._act(request, found, change)
        async with self.gateway.sessions() as session:
            rows = [
                views.mapping(m, i, k) for m, i, k in await identity_queries.list_mappings(session)
            ]
            idps = [i.name for i in await identity_queries.list_idps(session)]
            keys = [k.name for k in await queries.list_keys(session) if k.revoked_at is None]
        return self._render(
            "admin/mappings.html", found, mappings=rows, idps=idps, keys=keys, error=error,
            check=check,
        )  # fmt: skip

    async def _who_gets_what(self, form: dict[str, str]) -> dict[str, Any]:
        """Which mapping (and key, role) would decide for this email and these groups."""
        email = form.get("email", "").strip() or None
        groups = [g.strip() for g in form.get("groups", "").split(",") if g.strip()]
        async with self.gateway.sessions() as session:
            idp = await identity_queries.get_idp(session, name=form.get("idp", ""))
            rows = await identity_queries.list_mappings(
                session, idp_id=idp.id if idp is not None else -1
            )
        mapping = resolve_mapping(
            [m for m, _, _ in rows], email=email, groups=groups, groups_complete=True
        )
        keys = {m.id: k for m, _, k in rows}
        result: dict[str, Any] = {"email": email, "groups": groups, "mapping": None}
        if mapping is not None:
            result.update(mapping=mapping.id, key=keys[mapping.id].name, role=mapping.role)
        return result

    # IdPs, users, audit

    async def idps(self, request: Request) -> Response:
        found = await self.principal(request)
        if isinstance(found, Response):
            return found
        async with self.gateway.sessions() as session:
            url = self.gateway.settings.public_url
            rows = [views.idp(i, url) for i in await identity_queries.list_idps(session)]
        return self._render("admin/idps.html", found, idps=rows)

    async def users(self, request: Request) -> Response:
        found = await self.principal(request)
        if isinstance(found, Response):
            return found
        error = None
        if request.method == "POST":
            form = await self._form(request, found)
            if isinstance(form, Response):
                return form
            disabled = form.get("action") == "disable"
            error = await self._act(
                request,
                found,
                lambda s: identity_ops.set_user_disabled(
                    s, email=form.get("email", ""), disabled=disabled
                ),
            )
        async with self.gateway.sessions() as session:
            rows = [views.user(u) for u in await identity_queries.list_users(session)]
        return self._render("admin/users.html", found, users=rows, error=error)

    async def audit(self, request: Request) -> Response:
        found = await self.principal(request)
        if isinstance(found, Response):
            return found
        q = request.query_params
        async with self.gateway.sessions() as session:
            rows = await admin_queries.list_audit(
                session,
                action=q.get("action") or None,
                actor=q.get("actor") or None,
                target=q.get("target") or None,
                limit=200,
            )
        return self._render(
            "admin/audit.html", found, events=[views.audit(e) for e in rows], filters=dict(q)
        )


def _int(form: dict[str, str], name: str, default: int | None = None) -> int:
    try:
        return int(form.get(name, ""))
    except ValueError as exc:
        if default is not None and not form.get(name):
            return default
        raise manage.ManageError(f"{name} must be a whole number") from exc
