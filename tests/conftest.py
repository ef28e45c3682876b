"""Shared fixtures: a fake upstream and a real Gatepass, each a uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from idp_dev import IdpConfig, IdpHandle, run_idp
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass import manage
from gatepass.app import create_app
from gatepass.config import Settings, load_settings
from gatepass.crypto import Keyring
from gatepass.devtools.fake_upstream import FakeUpstream
from gatepass.devtools.server import bind_loopback, serve_in_thread, socket_url
from gatepass.manage import identity as identity_ops
from gatepass.runtime import Gateway
from gatepass.store import queries
from gatepass.store.db import create_engine, session_maker
from gatepass.store.migrate import upgrade
from gatepass.store.models import RequestLog

T = TypeVar("T")

UPSTREAM_KEY = "sk-ant-upstream-test-key-0123456789"
SECRET_KEY = "test-secret-key-for-gatepass-0123456789"
MODELS = ("claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5")


@dataclass
class Upstream:
    fake: FakeUpstream
    url: str


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    fake = FakeUpstream(api_key=UPSTREAM_KEY)
    with serve_in_thread(fake.app) as url:
        yield Upstream(fake, url)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating every time is slow)."""
    path = tmp_path_factory.mktemp("template") / "gatepass.db"
    upgrade(f"sqlite:///{path}")
    return path


def in_fresh_loop(action: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a new event loop in a worker thread.

    A thread, because a test may already run a loop in the main one (Playwright's sync API).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, action()).result()


class Harness:
    """A running Gatepass plus helpers to manage it the way an operator would."""

    def __init__(self, settings: Settings, gateway: Gateway, upstream: Upstream) -> None:
        self.settings = settings
        self.gateway = gateway
        self.upstream = upstream
        self.fake = upstream.fake
        self.keyring = Keyring(settings.secret_key.get_secret_value())
        self.url = ""
        self._written = threading.Condition()
        self._total = 0

    @property
    def base(self) -> str:
        return self.url + "/anthropic"

    def store(self, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def run() -> T:
            engine = create_engine(self.settings.database_url)
            try:
                async with session_maker(engine)() as session:
                    result = await action(session)
                    await session.commit()
                    return result
            finally:
                await engine.dispose()

        return in_fresh_loop(run)

    def create_key(self, name: str, models: str = "*", expires: str | None = None) -> str:
        issued = self.store(
            lambda s: manage.create_key(s, self.keyring, name=name, models=models, expires=expires)
        )
        return issued.secret

    def revoke_key(self, name: str) -> None:
        self.store(lambda s: manage.revoke_key(s, name=name))
        self.gateway.keys.invalidate()  # what the change epoch does within a second
        self.gateway.tokens.invalidate()

    def refresh_catalog(self) -> None:
        """Make the running gateway re-read routes now (instead of on its timer)."""
        loop = self.gateway.loop
        assert loop is not None
        asyncio.run_coroutine_threadsafe(self.gateway.refresh_catalog(), loop).result(5)

    def on_written(self, total: int) -> None:
        with self._written:
            self._total = total
            self._written.notify_all()

    def wait_for_logs(self, count: int, timeout: float = 10.0) -> list[RequestLog]:
        """Block until `count` log rows have been written, then return them (oldest first)."""
        with self._written:
            if not self._written.wait_for(lambda: self._total >= count, timeout):
                raise AssertionError(f"expected {count} log rows, got {self._total}")
        rows = self.store(lambda s: queries.list_request_logs(s, limit=1000))
        return list(reversed(rows))


def seed(harness: Harness, upstream_url: str) -> None:
    async def action(session: AsyncSession) -> None:
        await manage.add_provider(
            session,
            harness.keyring,
            name="fake",
            kind="anthropic",
            base_url=upstream_url,
            api_key=UPSTREAM_KEY,
            timeout=30,
        )
        for model in MODELS:
            await manage.add_model(session, model_id=model, provider="fake", aliases=[])
        await manage.add_model(
            session,
            model_id="claude-sonnet-latest",
            provider="fake",
            upstream_model="claude-sonnet-4-6-20260101",
            display_name="Claude Sonnet (latest)",
            aliases=["sonnet"],
        )

    harness.store(action)


GatepassFactory = Callable[..., Harness]


@pytest.fixture
def make_gatepass(
    tmp_path: Path, migrated_template: Path, upstream: Upstream
) -> Iterator[GatepassFactory]:
    """Start a Gatepass with settings overrides; stopped at the end of the test."""
    stack: list[Any] = []

    def start(**overrides: Any) -> Harness:
        db = tmp_path / f"gatepass-{len(stack)}.db"
        shutil.copy(migrated_template, db)
        sock = bind_loopback()
        values: dict[str, Any] = {
            "public_url": socket_url(sock),
            "environment": "development",
            "database_url": f"sqlite+aiosqlite:///{db}",
            "secret_key": SECRET_KEY,
            "log_flush_interval": 0.02,
        }
        values.update(overrides)
        settings = load_settings(environ={}, **values)
        gateway = Gateway(settings)
        harness = Harness(settings, gateway, upstream)
        seed(harness, upstream.url)
        app = create_app(settings, gateway)
        context = serve_in_thread(app, sock=sock)
        harness.url = context.__enter__()
        stack.append(context)
        gateway.log_writer.on_written.append(harness.on_written)
        return harness

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def gatepass(make_gatepass: GatepassFactory) -> Harness:
    return make_gatepass()


# Interactive sign-in: idp-dev as the corporate IdP, Claude Desktop as a registered client.

IDP_NAME = "corp"
IDP_CLIENT_SECRET = "gatepass-dev-secret"
DESKTOP_CLIENT = "claude-desktop"


@pytest.fixture
def idp() -> Iterator[IdpHandle]:
    """idp-dev with its demo users (alice: engineering+admins, bob: sales)."""
    config = IdpConfig.demo(redirect_uris=["http://127.0.0.1/sso/callback/" + IDP_NAME])
    with run_idp(config) as handle:
        yield handle


@dataclass
class SignIn:
    """A Gatepass wired to idp-dev, with keys and mappings for the demo users."""

    gatepass: Harness
    idp: IdpHandle
    eng_key: str  # secrets of the mapped keys, for comparison only
    sales_key: str

    @property
    def issuer(self) -> str:
        return self.gatepass.url


@pytest.fixture
def make_signin(make_gatepass: GatepassFactory, idp: IdpHandle) -> Callable[..., SignIn]:
    def start(**overrides: Any) -> SignIn:
        harness = make_gatepass(**overrides)
        eng = harness.create_key("eng-key", models="claude-haiku-4-5,claude-sonnet-4-6")
        sales = harness.create_key("sales-key", models="claude-haiku-4-5")

        async def wire(session: AsyncSession) -> None:
            await identity_ops.add_idp(
                session,
                harness.keyring,
                name=IDP_NAME,
                issuer=idp.issuer,
                client_id="gatepass",
                client_secret=IDP_CLIENT_SECRET,
                scopes="openid profile email groups offline_access",
                allowed_domains=["corp.example"],
            )
            await identity_ops.add_client(
                session,
                harness.keyring,
                client_id=DESKTOP_CLIENT,
                redirect_uris=["http://127.0.0.1/callback"],
                public=True,
            )
            await identity_ops.add_mapping(
                session, idp=IDP_NAME, group="engineering", key="eng-key", priority=10
            )
            await identity_ops.add_mapping(
                session, idp=IDP_NAME, group="sales", key="sales-key", priority=20
            )

        harness.store(wire)
        return SignIn(harness, idp, eng, sales)

    return start


@pytest.fixture
def signin(make_signin: Callable[..., SignIn]) -> SignIn:
    return make_signin()
