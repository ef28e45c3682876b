"""Shared fixtures for the issuer tests (no tests here): a Gatepass site that serves only the
OAuth issuer, signed in through a fake `LoginBroker` instead of a corporate IdP.

The fake broker completes every sign-in at once for the user the test chose, and answers
`recheck` with whatever the test set. Everything else is real: uvicorn on loopback, the
migrated SQLite database, the keyring.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from gatepass import manage
from gatepass.config import Settings, load_settings
from gatepass.crypto import Keyring
from gatepass.devtools.server import bind_loopback, serve_in_thread, socket_url
from gatepass.identity import Completion, FailureReturn, Purpose, Recheck, SignedIn
from gatepass.manage import identity as identity_ops
from gatepass.oauth import OAuthService
from gatepass.runtime import Gateway
from gatepass.store import queries
from gatepass.store.db import create_engine, session_maker
from gatepass.store.identity import User

T = TypeVar("T")

SECRET_KEY = "test-secret-key-for-gatepass-oauth-0123456789"
DESKTOP = "claude-desktop"
DESKTOP_REDIRECT = "http://127.0.0.1/callback"
IPV6_APP = "ipv6-app"
TWO_URIS = "two-uris"
WEB_APP = "web-app"
WEB_REDIRECT = "https://app.example/cb"
SCOPE = "openid profile email offline_access"


class FakeBroker:
    """A `LoginBroker` whose sign-ins succeed at once as `identity`."""

    def __init__(self) -> None:
        self.completions: dict[str, Completion] = {}
        self.failures: dict[str, FailureReturn] = {}
        self.identity: SignedIn | None = None
        self.recheck_result: Recheck | None = None  # None: ok, with the current identity
        self.recheck_error: Exception | None = None
        self.begun: list[tuple[Purpose, dict[str, Any], str | None]] = []
        self.rechecks: list[tuple[int, datetime]] = []

    def on_complete(self, purpose: Purpose, completion: Completion) -> None:
        self.completions[purpose] = completion

    def on_failure(self, purpose: Purpose, failure: FailureReturn) -> None:
        self.failures[purpose] = failure

    async def begin(
        self,
        request: Request,
        *,
        purpose: Purpose,
        payload: dict[str, Any],
        login_hint: str | None = None,
    ) -> Response:
        self.begun.append((purpose, payload, login_hint))
        assert self.identity is not None
        return await self.completions[purpose](request, payload, self.identity)

    async def recheck(self, user_id: int, auth_time: datetime) -> Recheck:
        self.rechecks.append((user_id, auth_time))
        if self.recheck_error is not None:
            raise self.recheck_error
        if self.recheck_result is not None:
            return self.recheck_result
        return Recheck("ok", identity=self.identity)


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Tokens:
    """What one sign-in produced."""

    body: dict[str, Any]

    @property
    def access_token(self) -> str:
        return str(self.body["access_token"])

    @property
    def id_token(self) -> str:
        return str(self.body["id_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.body["refresh_token"])


@dataclass
class Callback:
    """Where the continue page sends the browser, parsed."""

    url: str
    params: dict[str, str]
    verifier: str
    redirect_uri: str | None


@dataclass
class Issuer:
    """A running issuer-only Gatepass with a signed-in user at hand."""

    url: str
    settings: Settings
    gateway: Gateway
    service: OAuthService
    broker: FakeBroker
    keyring: Keyring
    http: httpx2.Client
    identity: SignedIn
    web_secret: str
    extra: dict[str, Any] = field(default_factory=dict)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's own event loop (for the service's methods)."""
        loop = self.gateway.loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

    def store(self, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return run_store(self.settings.database_url, action)

    def authorize(self, **overrides: str | None) -> httpx2.Response:
        """GET /oauth/authorize with Desktop's parameters, `overrides` applied (None drops)."""
        verifier, challenge = pkce()
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": DESKTOP,
            "redirect_uri": "http://127.0.0.1:53682/callback",
            "scope": SCOPE,
            "state": "state-" + secrets.token_urlsafe(8),
            "nonce": "nonce-" + secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        self.extra["verifier"] = verifier
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return self.http.get("/oauth/authorize?" + query)

    def sign_in(self, **overrides: str | None) -> Callback:
        """Run authorize through the fake broker and follow the continue page's target."""
        response = self.authorize(**overrides)
        assert response.status_code == 200, response.text
        target = continue_target(response.text)
        params = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
        redirect = overrides.get("redirect_uri", "http://127.0.0.1:53682/callback")
        return Callback(target, params, self.extra["verifier"], redirect)

    def redeem(self, callback: Callback, **overrides: str | None) -> httpx2.Response:
        form: dict[str, str | None] = {
            "grant_type": "authorization_code",
            "code": callback.params["code"],
            "redirect_uri": callback.redirect_uri,
            "client_id": DESKTOP,
            "code_verifier": callback.verifier,
        }
        form.update(overrides)
        return self.http.post("/oauth/token", data={k: v for k, v in form.items() if v is not None})

    def tokens(self, **overrides: str | None) -> Tokens:
        """A full sign-in: authorize, continue page, code exchange."""
        response = self.redeem(self.sign_in(**overrides))
        assert response.status_code == 200, response.text
        return Tokens(response.json())

    def refresh(self, refresh_token: str, **overrides: str | None) -> httpx2.Response:
        form: dict[str, str | None] = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": DESKTOP,
        }
        form.update(overrides)
        return self.http.post("/oauth/token", data={k: v for k, v in form.items() if v is not None})


def continue_target(page: str) -> str:
    match = re.search(r'<a class="button" id="continue" href="([^"]+)"', page)
    assert match is not None, page
    return html.unescape(match.group(1))


def run_store(database_url: str, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(database_url)
        try:
            async with session_maker(engine)() as session:
                result = await action(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def _seed(session: AsyncSession, keyring: Keyring) -> tuple[SignedIn, str]:
    idp = await identity_ops.add_idp(
        session,
        keyring,
        name="corp",
        issuer="http://127.0.0.1:9/idp",
        client_id="gatepass",
        client_secret="idp-secret",
    )
    issued = await manage.create_key(session, keyring, name="eng-key", models="*")
    await manage.create_key(session, keyring, name="sales-key", models="*")
    user = User(
        public_id="u_" + secrets.token_hex(8),
        idp_id=idp.id or 0,
        issuer=idp.issuer,
        subject="alice-subject",
        email="alice@corp.example",
        name="Alice Example",
        groups=["engineering", "admins"],
    )
    session.add(user)
    await session.flush()
    for client_id, uris, public in (
        (DESKTOP, [DESKTOP_REDIRECT], True),
        (IPV6_APP, ["http://[::1]/callback"], True),
        (TWO_URIS, ["http://127.0.0.1/a", "http://127.0.0.1/b"], True),
    ):
        await identity_ops.add_client(
            session, keyring, client_id=client_id, redirect_uris=uris, public=public
        )
    _, secret = await identity_ops.add_client(
        session, keyring, client_id=WEB_APP, redirect_uris=[WEB_REDIRECT], public=False
    )
    assert secret is not None
    assert user.id is not None
    assert issued.key.id is not None
    identity = SignedIn(
        user_id=user.id,
        public_id=user.public_id,
        email=user.email,
        name=user.name,
        groups=("engineering", "admins"),
        idp_name="corp",
        key_id=issued.key.id,
        role="user",
        auth_time=datetime.now(UTC).replace(microsecond=0),
    )
    return identity, secret


async def key_id(session: AsyncSession, name: str) -> int:
    key = await queries.get_key_by_name(session, name=name)
    assert key is not None
    assert key.id is not None
    return key.id


IssuerFactory = Callable[..., Issuer]


@pytest.fixture
def make_issuer(tmp_path: Path, migrated_template: Path) -> Iterator[IssuerFactory]:
    """Start issuer-only Gatepass sites; `database=` shares one database (replicas)."""
    stack: list[Any] = []

    def start(*, database: Path | None = None, **overrides: Any) -> Issuer:
        seeded = database is not None
        if database is None:
            database = tmp_path / f"issuer-{len(stack)}.db"
            shutil.copy(migrated_template, database)
        sock = bind_loopback()
        values: dict[str, Any] = {
            "public_url": socket_url(sock),
            "environment": "development",
            "database_url": f"sqlite+aiosqlite:///{database}",
            "secret_key": SECRET_KEY,
        }
        values.update(overrides)
        settings = load_settings(environ={}, **values)
        keyring = Keyring(SECRET_KEY)
        if seeded:
            identity, web_secret = stack[0][1].identity, stack[0][1].web_secret
        else:
            identity, web_secret = run_store(settings.database_url, lambda s: _seed(s, keyring))
        gateway = Gateway(settings)
        broker = FakeBroker()
        broker.identity = identity
        service = OAuthService(gateway, broker)

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await gateway.start()
            await service.start()
            try:
                yield
            finally:
                await service.stop()
                await gateway.stop()

        app = Starlette(routes=service.routes(), lifespan=lifespan)
        context = serve_in_thread(app, sock=sock)
        url = context.__enter__()
        http = httpx2.Client(base_url=url, follow_redirects=False, timeout=10)
        issuer = Issuer(
            url, settings, gateway, service, broker, keyring, http, identity, web_secret
        )
        issuer.extra["database"] = database
        stack.append((context, issuer))
        return issuer

    yield start
    for context, issuer in reversed(stack):
        issuer.http.close()
        context.__exit__(None, None, None)


@pytest.fixture
def issuer(make_issuer: IssuerFactory) -> Issuer:
    return make_issuer()


def with_identity(issuer: Issuer, **changes: Any) -> SignedIn:
    """The issuer's identity with some fields changed (e.g. another key after a recheck)."""
    return replace(issuer.identity, **changes)
