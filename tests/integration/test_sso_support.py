"""A small site around Gatepass's relying party, for the `test_sso_*` tests (no tests here).

The site is what `create_app` would serve for sign-in, built inline: the `SsoService`'s own
routes plus `/test/begin`, which starts a sign-in the way the issuer does, and a completion
that records what it was handed and answers with it as JSON. It runs under uvicorn on
loopback with its own database, and talks to a real idp-dev. The outbound transport is the
real network wrapped in a recorder, so tests can count JWKS fetches without faking anything.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from idp_dev import IdpHandle
from idp_dev import testing as idp_testing
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass import manage
from gatepass.config import Settings, load_settings
from gatepass.devtools.server import bind_loopback, serve_in_thread, socket_url
from gatepass.identity import Completion, Purpose, Recheck, SignedIn
from gatepass.manage import identity as identity_ops
from gatepass.runtime import Gateway
from gatepass.sso import SsoService
from gatepass.store import identity_queries, queries
from gatepass.store.db import create_engine, session_maker
from gatepass.store.events import AuditEvent
from gatepass.store.identity import User

T = TypeVar("T")

SECRET_KEY = "test-secret-key-for-gatepass-0123456789"
IDP_SECRET = "gatepass-dev-secret"
ALICE = ("alice@corp.example", "alice-password")
BOB = ("bob@corp.example", "bob-password")


class RecordingTransport(httpx2.AsyncBaseTransport):
    """The real network, remembering every URL asked for."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.urls.append(str(request.url.copy_with(query=None)))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, suffix: str) -> int:
        return sum(1 for url in self.urls if url.endswith(suffix))


@dataclass
class Completed:
    purpose: str
    payload: dict[str, Any]
    identity: SignedIn


@dataclass
class Site:
    url: str
    settings: Settings
    gateway: Gateway
    sso: SsoService
    transport: RecordingTransport
    idp: IdpHandle
    completed: list[Completed] = field(default_factory=list)

    def store(self, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `action` against the site's database in a transaction of its own."""

        async def run() -> T:
            engine = create_engine(self.settings.database_url)
            try:
                async with session_maker(engine)() as session:
                    result = await action(session)
                    await session.commit()
                    return result
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def on_server(self, action: Awaitable[T]) -> T:
        """Run a coroutine on the server's event loop (where the service lives)."""
        loop = self.gateway.loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(action, loop).result(30)  # type: ignore[arg-type]

    def recheck(self, user_id: int) -> Recheck:
        return self.on_server(self.sso.recheck(user_id, datetime.now().astimezone()))

    def browser(self) -> httpx2.Client:
        return httpx2.Client(follow_redirects=False, timeout=30)

    def begin(
        self,
        http: httpx2.Client,
        *,
        hint: str | None = None,
        purpose: Purpose = "admin",
        payload: dict[str, Any] | None = None,
    ) -> httpx2.Response:
        params = {"purpose": purpose, "payload": json.dumps(payload or {"next": "/"})}
        if hint is not None:
            params["hint"] = hint
        return http.get(f"{self.url}/test/begin", params=params)

    def to_callback(
        self,
        http: httpx2.Client,
        who: tuple[str, str] = ALICE,
        *,
        hint: str | None = None,
        purpose: Purpose = "admin",
    ) -> str:
        """Begin and sign in at the IdP; the callback URL the IdP sends the browser to."""
        started = self.begin(http, hint=hint, purpose=purpose)
        assert started.status_code == 302, started.text
        return idp_testing.sign_in(http, started.headers["location"], login=who[0], password=who[1])

    def sign_in(self, who: tuple[str, str] = ALICE, *, hint: str | None = None) -> httpx2.Response:
        """The whole flow in a fresh browser; the response to the callback."""
        with self.browser() as http:
            return http.get(self.to_callback(http, who, hint=hint))

    def audit(self, action: str | None = None) -> list[AuditEvent]:
        async def read(session: AsyncSession) -> list[AuditEvent]:
            query = select(AuditEvent).order_by(col(AuditEvent.id))
            if action is not None:
                query = query.where(AuditEvent.action == action)
            return list((await session.exec(query)).all())

        return self.store(read)

    def user(self, email: str) -> User:
        async def read(session: AsyncSession) -> User:
            (user,) = await identity_queries.find_users_by_email(session, email=email)
            return user

        return self.store(read)

    def key_id(self, name: str) -> int:
        async def read(session: AsyncSession) -> int:
            key = await queries.get_key_by_name(session, name=name)
            assert key is not None
            assert key.id is not None
            return key.id

        return self.store(read)

    def add_mapping(self, **mapping: Any) -> None:
        async def add(session: AsyncSession) -> None:
            await identity_ops.add_mapping(session, **mapping)

        self.store(add)

    def add_idp(self, name: str, issuer: str, domains: list[str]) -> None:
        async def add(session: AsyncSession) -> None:
            await identity_ops.add_idp(
                session,
                self.gateway.keyring,
                name=name,
                issuer=issuer,
                client_id="gatepass",
                client_secret=IDP_SECRET,
                scopes="openid profile email groups offline_access",
                allowed_domains=domains,
            )

        self.store(add)


def _app(sso: SsoService, gateway: Gateway, completed: list[Completed]) -> Starlette:
    async def begin(request: Request) -> Response:
        purpose = request.query_params["purpose"]
        assert purpose in ("authorize", "device", "admin")
        return await sso.begin(
            request,
            purpose=purpose,  # type: ignore[arg-type]
            payload=json.loads(request.query_params["payload"]),
            login_hint=request.query_params.get("hint"),
        )

    def completion(purpose: Purpose) -> Completion:
        async def complete(
            request: Request, payload: dict[str, Any], identity: SignedIn
        ) -> Response:
            completed.append(Completed(purpose, payload, identity))
            return JSONResponse(
                {
                    "purpose": purpose,
                    "payload": payload,
                    "user_id": identity.user_id,
                    "public_id": identity.public_id,
                    "email": identity.email,
                    "groups": list(identity.groups),
                    "key_id": identity.key_id,
                    "role": identity.role,
                    "idp": identity.idp_name,
                }
            )

        return complete

    sso.on_complete("admin", completion("admin"))
    sso.on_complete("authorize", completion("authorize"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        await sso.start()
        try:
            yield
        finally:
            await sso.stop()
            await gateway.stop()

    return Starlette(routes=[*sso.routes(), Route("/test/begin", begin)], lifespan=lifespan)


SiteFactory = Callable[..., Site]


@contextmanager
def site_factory(tmp_path: Path, template: Path, idp: IdpHandle) -> Iterator[SiteFactory]:
    """Start sites (each with its own database) wired to `idp` as "corp"; stop them after."""
    stack: list[Any] = []
    lock = threading.Lock()

    def start(*, timeout: float = 10.0, **overrides: Any) -> Site:
        with lock:
            db = tmp_path / f"sso-{len(stack)}.db"
        shutil.copy(template, db)
        sock = bind_loopback()
        values: dict[str, Any] = {
            "public_url": socket_url(sock),
            "environment": "development",
            "database_url": f"sqlite+aiosqlite:///{db}",
            "secret_key": SECRET_KEY,
        }
        values.update(overrides)
        settings = load_settings(environ={}, **values)
        gateway = Gateway(settings)
        transport = RecordingTransport()
        sso = SsoService(gateway, transport=transport, timeout=timeout)
        completed: list[Completed] = []
        context = serve_in_thread(_app(sso, gateway, completed), sock=sock)
        url = context.__enter__()
        stack.append(context)
        site = Site(url, settings, gateway, sso, transport, idp, completed)
        _seed(site)
        return site

    try:
        yield start
    finally:
        for context in reversed(stack):
            context.__exit__(None, None, None)


def _seed(site: Site) -> None:
    async def seed(session: AsyncSession) -> None:
        keyring = site.gateway.keyring
        await manage.create_key(session, keyring, name="eng-key", models="*")
        await manage.create_key(session, keyring, name="sales-key", models="*")
        await manage.create_key(session, keyring, name="vip-key", models="*")

    site.store(seed)
    site.add_idp("corp", site.idp.issuer, ["corp.example"])
    site.add_mapping(idp="corp", group="engineering", key="eng-key", priority=10)
    site.add_mapping(idp="corp", group="sales", key="sales-key", priority=20)


def refused(site: Site, response: httpx2.Response, reason: str, status: int = 400) -> AuditEvent:
    """Assert a clear failure page, no completion, and the audit event; return the event."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert site.completed == []
    events = [e for e in site.audit() if e.detail.get("reason") == reason]
    assert events, [e.detail for e in site.audit()]
    event = events[-1]
    assert event.action == ("login.denied" if status == 403 else "login.failure")
    assert event.detail["reference"] in response.text
    return event
