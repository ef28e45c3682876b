"""The running gateway's shared services, opened and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from gatepass.config import Settings
from gatepass.crypto import Keyring
from gatepass.limits.caps import usd_to_nano
from gatepass.limits.limiter import Limiter
from gatepass.limits.plan import Used
from gatepass.logs.capture import bodies_of
from gatepass.logs.metrics import Metrics
from gatepass.logs.writer import LogWriter
from gatepass.policy.catalog import Catalog
from gatepass.policy.keys import KeyAuthenticator
from gatepass.policy.tokens import TokenAuthenticator
from gatepass.proxy.relay import Relay
from gatepass.store import admin_queries, identity_queries, limits_queries, queries
from gatepass.store.db import SessionMaker, create_engine, session_maker
from gatepass.store.identity import User
from gatepass.store.models import VirtualKey
from gatepass.store.types import utcnow

log = logging.getLogger("gatepass")


EPOCH_POLL_INTERVAL = 1.0  # seconds between reads of the change epoch
CATALOG_REFRESH_EVERY = 5  # epoch polls between re-reads of providers and model routes


class Gateway:
    """Holds what every request needs; nothing here is a module-level global."""

    def __init__(self, settings: Settings) -> None:
        settings.check_secret()
        self.settings = settings
        self.keyring = Keyring(settings.secret_key.get_secret_value())
        self.catalog = Catalog()
        self.ready = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.open_requests = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._engine: AsyncEngine | None = None
        self._sessions: SessionMaker | None = None
        self._http: aiohttp.ClientSession | None = None
        self._relay: Relay | None = None
        self._writer: LogWriter | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._purger: asyncio.Task[None] | None = None
        # set when `logs.capture = "full"`: the proxy then hands bodies to the log writer
        self.capture_bodies = settings.logs.capture == "full"
        self.metrics = Metrics()  # fed by the log writer, read by /metrics
        self.keys = KeyAuthenticator(self.keyring, self._load_key, ttl=settings.key_cache_ttl)
        self.tokens = TokenAuthenticator(
            self._verify_token, self._load_session_state, ttl=settings.key_cache_ttl
        )
        self._epoch: int | None = None
        self.limits = Limiter(settings, self._load_spend)
        self.sso: Any = None  # the relying party (gatepass.sso.SsoService), set by create_app
        self.oauth: Any = None  # the issuer (gatepass.oauth.OAuthService), set by create_app

    @property
    def sessions(self) -> SessionMaker:
        assert self._sessions is not None, "gateway not started"
        return self._sessions

    @property
    def relay(self) -> Relay:
        assert self._relay is not None, "gateway not started"
        return self._relay

    @property
    def log_writer(self) -> LogWriter:
        assert self._writer is not None, "gateway not started"
        return self._writer

    def request_started(self) -> None:
        self.open_requests += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self.open_requests -= 1
        if self.open_requests == 0:
            self._idle.set()

    async def drain(self, seconds: float) -> None:
        """Wait up to `seconds` for open proxied requests (streams included) to finish."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            log.warning("shutting down with %d requests still open", self.open_requests)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._engine = create_engine(self.settings.database_url)
        self._sessions = session_maker(self._engine)
        connector = aiohttp.TCPConnector(
            limit=0,  # no global cap: per-provider concurrency is the provider's business
            ttl_dns_cache=300,  # seconds
            family=socket.AF_UNSPEC,
        )
        self._http = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
        self._relay = Relay(
            self._http,
            ping_interval=self.settings.ping_interval,
            connect_timeout=self.settings.upstream_connect_timeout,
        )
        self._writer = LogWriter(
            self._write_logs,
            batch_size=self.settings.log_batch_size,
            flush_interval=self.settings.log_flush_interval,
        )
        self._writer.start()
        await self.limits.start()
        await self.refresh_catalog()
        await self.check_change_epoch()
        self._refresher = asyncio.create_task(self._refresh_forever(), name="catalog-refresh")
        self._purger = asyncio.create_task(self._purge_forever(), name="log-retention")
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for task in (self._refresher, self._purger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.limits.close()
        if self._writer is not None:
            await self._writer.close()
        if self._http is not None:
            await self._http.close()
        if self._engine is not None:
            await self._engine.dispose()

    async def refresh_catalog(self) -> None:
        async with self.sessions() as session:
            rows = await queries.list_model_routes(session)
        catalog, warnings = Catalog.build(rows, self.keyring)
        for warning in warnings:
            log.error(warning)
        self.catalog = catalog

    async def _refresh_forever(self) -> None:
        """Watch the change epoch every second and re-read the catalogue every few seconds."""
        ticks = 0
        while True:
            await asyncio.sleep(EPOCH_POLL_INTERVAL)
            ticks += 1
            try:
                await self.check_change_epoch()
                if ticks % CATALOG_REFRESH_EVERY == 0:
                    await self.refresh_catalog()
            except Exception:
                log.exception("background refresh failed; keeping the previous state")

    async def _load_key(self, secret_hash: str) -> VirtualKey | None:
        async with self.sessions() as session:
            return await queries.get_key_by_hash(session, secret_hash=secret_hash)

    async def _load_spend(
        self, key_id: int, user_email: str | None, start: datetime, end: datetime
    ) -> Used:
        async with self.sessions() as session:
            tokens, usd = await limits_queries.spend_between(
                session, key_id=key_id, user_email=user_email, start=start, end=end
            )
        return Used(tokens, usd_to_nano(round(usd, 9)))

    async def _verify_token(self, token: str) -> Any:
        return None if self.oauth is None else await self.oauth.verify(token)

    async def _load_session_state(
        self, public_id: str, key_id: int, family_id: str
    ) -> tuple[User, VirtualKey, bool] | None:
        async with self.sessions() as session:
            return await identity_queries.load_session_state(
                session, public_id=public_id, key_id=key_id, family_id=family_id
            )

    async def check_change_epoch(self) -> None:
        """Drop cached keys and sessions when any process recorded a revocation or change."""
        async with self.sessions() as session:
            epoch = await identity_queries.read_change_epoch(session)
        if self._epoch is not None and epoch != self._epoch:
            self.keys.invalidate()
            self.tokens.invalidate()
            await self.refresh_catalog()  # providers and models changed too, perhaps
        self._epoch = epoch

    async def _write_logs(self, rows: list[dict[str, Any]]) -> None:
        captured = [
            (row["request_id"], row["created_at"], row.pop("capture"))
            for row in rows
            if "capture" in row
        ]
        bodies = bodies_of(captured, self.settings.logs.max_body_chars)  # text work: off the path
        async with self.sessions() as session:
            await queries.insert_request_logs(session, rows=rows)
            await admin_queries.insert_request_bodies(session, rows=bodies)
            await session.commit()
        self.metrics.observe(rows)

    async def purge_logs(self) -> int:
        """Delete request logs (and bodies) older than `logs.retention_days`; rows deleted."""
        days = self.settings.logs.retention_days
        if days == 0:
            return 0
        async with self.sessions() as session:
            deleted = await admin_queries.purge_older_than(
                session, cutoff=utcnow() - timedelta(days=days)
            )
            await admin_queries.purge_admin_sessions(session, now=utcnow())
            await session.commit()
        return deleted

    async def _purge_forever(self) -> None:
        while True:
            try:
                deleted = await self.purge_logs()
                if deleted:
                    log.info("retention: deleted %d request log rows", deleted)
            except Exception:
                log.exception("retention purge failed; trying again later")
            await asyncio.sleep(self.settings.logs.purge_interval)

    async def check_database(self) -> bool:
        try:
            async with self.sessions() as session:
                await queries.ping(session)
        except Exception:
            log.exception("database check failed")
            return False
        return True
