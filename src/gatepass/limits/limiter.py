"""The limiter the proxy calls: plan → admit (or refuse) → settle, on Redis or in memory.

Callers with no limits never reach a backend. When Redis cannot be reached, admission fails
closed with a 503 (or, with `on_redis_error = "local"`, falls back to this process's own
counters); Redis is tried again `redis_retry_interval` seconds later, so service comes back
by itself. Settlements that could not be written are retried in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gatepass.config import Settings
from gatepass.limits import respond
from gatepass.limits.backend import Backend, BackendUnavailable
from gatepass.limits.caps import KeyLimits
from gatepass.limits.memory import MemoryBackend
from gatepass.limits.periods import Period
from gatepass.limits.plan import Decision, Plan, Used, scopes_for
from gatepass.limits.pricing import PriceTable, counted_tokens, estimate
from gatepass.limits.redis_backend import RedisBackend
from gatepass.policy.principal import Principal
from gatepass.proxy.errors import GatewayError
from gatepass.proxy.usage import Usage

log = logging.getLogger("gatepass.limits")

SpendLoader = Callable[[int, str | None, datetime, datetime], Awaitable[Used]]
Clock = Callable[[], float]
RETRY_SETTLEMENTS_EVERY = 1.0  # seconds
MAX_SEED_ROUNDS = 3


@dataclass(slots=True)
class Ticket:
    """An admitted request: what to settle, where, and the caller's standing at admission."""

    plan: Plan
    backend: Backend
    used: list[Used]

    def headers(self) -> list[tuple[bytes, bytes]]:
        return respond.standing_headers(self.plan, self.used)


class Limiter:
    def __init__(self, settings: Settings, load_spend: SpendLoader, clock: Clock = time.time):
        self.settings = settings.limits
        self.prices = PriceTable(self.settings.prices, self.settings.default_price)
        self.clock = clock  # Unix seconds; tests move it to cross window edges
        self._load_spend = load_spend
        self._local = MemoryBackend()
        self._redis: RedisBackend | None = None
        self._redis_url: str | None = None
        backend = self.settings.backend
        if backend == "redis" and settings.redis_url is None:
            raise ValueError("limits.backend is 'redis' but redis_url is not set")
        if backend == "redis" or (backend == "auto" and settings.redis_url is not None):
            self._redis_url = settings.redis_url
        self._down_until = 0.0  # monotonic seconds; Redis is not tried before then
        self._down = False
        self._unsettled: deque[tuple[Plan, int, int]] = deque(maxlen=100_000)
        self._retrier: asyncio.Task[None] | None = None
        self._seeds: dict[tuple[int, str, str], asyncio.Future[None]] = {}
        self._seeded: dict[tuple[int, str, str], float] = {}  # monotonic time of the last seed

    @property
    def shared(self) -> bool:
        """Whether counters are shared between replicas (Redis)."""
        return self._redis_url is not None

    async def start(self) -> None:
        """Open the Redis client (connections are made on first use, in this loop)."""
        if self._redis_url is not None:
            self._redis = RedisBackend(
                self._redis_url,
                prefix=self.settings.redis_prefix,
                timeout=self.settings.redis_timeout,
                connections=self.settings.redis_connections,
            )
            self._retrier = asyncio.create_task(self._retry_forever(), name="limits-settle")

    async def close(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier
            await self._retry_unsettled()
        if self._redis is not None:
            await self._redis.close()

    def plan_request(
        self,
        principal: Principal,
        *,
        request_id: str,
        model_ids: list[str],
        body_bytes: int,
        max_tokens: int,
    ) -> Plan | None:
        """The plan for a Messages request, reserving its estimated tokens and cost."""
        if principal.limits is None:
            return None
        price = self.prices.price(model_ids)
        tokens, nano = estimate(price, body_bytes, max_tokens)
        return self.plan(principal, request_id=request_id, tokens=tokens, nano=nano)

    def plan(
        self, principal: Principal, *, request_id: str, tokens: int = 0, nano: int = 0
    ) -> Plan | None:
        """The admission question for a request, or None when no limit applies to it."""
        limits: KeyLimits | None = principal.limits
        if limits is None or not limits.applies_to(principal.user_email):
            return None
        now = self.clock()
        scopes = scopes_for(
            limits,
            key_id=principal.key_id,
            key_name=principal.key_name,
            user_email=principal.user_email,
            now=now,
        )
        return Plan(
            request_id=request_id,
            now=now,
            minute=int(now) // 60 * 60,
            period=limits.period,
            scopes=scopes,
            tokens=tokens,
            nano=nano,
            lease=self.settings.lease,
        )

    async def admit(self, plan: Plan) -> Ticket:
        """Reserve for `plan`, or raise the caller's 429 (or 503 when limits are unknowable)."""
        backend = self._backend()
        try:
            decision = await self._decide(backend, plan, peek=False)
        except BackendUnavailable as exc:
            backend = self._failed(exc)
            decision = await self._decide(backend, plan, peek=False)
        if not decision.allowed:
            raise respond.refusal(plan, decision, self.settings.help)
        return Ticket(plan, backend, decision.used)

    async def standing(self, plan: Plan) -> list[Used]:
        """Committed spend per scope, for the usage document."""
        backend = self._backend()
        try:
            decision = await self._decide(backend, plan, peek=True)
        except BackendUnavailable as exc:
            backend = self._failed(exc)
            decision = await self._decide(backend, plan, peek=True)
        return decision.used

    async def settle(self, ticket: Ticket, usage: Usage, nano: int) -> None:
        """Charge what a request used and release its reservation; never raises."""
        tokens = counted_tokens(usage)
        try:
            await ticket.backend.settle(ticket.plan, tokens, nano)
        except BackendUnavailable as exc:
            log.warning("limits: settlement deferred, Redis unreachable (%s)", exc)
            self._unsettled.append((ticket.plan, tokens, nano))
        except Exception:
            log.exception("limits: settlement failed")

    def cost(self, model_ids: list[str], usage: Usage) -> int:
        """What `usage` of the first priced model id costs, in nano-USD."""
        return self.prices.price(model_ids).cost(usage)

    async def spend(
        self, key_id: int, user_email: str | None, start: datetime, end: datetime
    ) -> Used:
        return await self._load_spend(key_id, user_email, start, end)

    async def usage_document(self, principal: Principal) -> dict[str, Any]:
        """`GET /api/oauth/usage` for this principal."""
        plan = self.plan(principal, request_id="usage")
        if plan is not None:
            document = respond.usage_with_caps(plan, await self.standing(plan))
            if document is not None:
                return document
        now = datetime.fromtimestamp(self.clock(), UTC)
        month = datetime.fromtimestamp(Period(1, "mo").window(now.timestamp())[0], UTC)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        week = day - timedelta(days=day.weekday())
        user = principal.user_email
        spent = [
            (await self.spend(principal.key_id, user, start, now + timedelta(seconds=1))).nano
            for start in (month, day, week)
        ]
        return respond.usage_without_caps(*spent)

    def _backend(self) -> Backend:
        if self._redis is None:
            return self._local
        if time.monotonic() < self._down_until:
            if self.settings.on_redis_error == "local":
                return self._local
            raise respond.unavailable()
        return self._redis

    def _failed(self, exc: BackendUnavailable) -> Backend:
        """Note that Redis is down; the backend to use instead, or the 503 to answer."""
        self._down_until = time.monotonic() + self.settings.redis_retry_interval
        fallback = self.settings.on_redis_error == "local"
        if not self._down:
            self._down = True
            log.error(
                "limits: Redis unreachable (%s); %s",
                exc,
                "counting in this process until it returns"
                if fallback
                else "refusing limited requests with 503 until it returns",
            )
        if fallback:
            return self._local
        raise respond.unavailable() from exc

    async def _decide(self, backend: Backend, plan: Plan, *, peek: bool) -> Decision:
        for attempt in range(MAX_SEED_ROUNDS):
            decision = await (backend.peek(plan) if peek else backend.admit(plan))
            if backend is self._redis and self._down:
                self._down = False
                log.warning("limits: Redis reachable again")
            if not decision.unseeded:
                return decision
            for index in decision.unseeded:
                await self._seed(backend, plan, index, again=attempt > 0)
        raise GatewayError(503, "api_error", "Usage limits could not be initialised; try again")

    async def _seed(self, backend: Backend, plan: Plan, index: int, *, again: bool) -> None:
        """Seed one window; concurrent requests of this process share the one query.

        A request that saw the window unseeded just before another one seeded it only checks
        again (`again=False`); seeding twice would be harmless, just a wasted query.
        """
        scope = plan.scopes[index]
        flight = (id(backend), scope.name, scope.window_id)
        seeded_at = self._seeded.get(flight)
        if not again and seeded_at is not None and time.monotonic() - seeded_at < 1.0:
            return
        task = self._seeds.get(flight)
        if task is None:

            async def run() -> None:
                try:
                    await backend.seed(plan, index, await self._seeding(plan, index))
                    if len(self._seeded) > 10_000:
                        self._seeded.clear()
                    self._seeded[flight] = time.monotonic()
                finally:
                    del self._seeds[flight]

            task = self._seeds[flight] = asyncio.ensure_future(run())
        await asyncio.shield(task)

    async def _seeding(self, plan: Plan, index: int) -> Used:
        scope = plan.scopes[index]
        start, end = (datetime.fromtimestamp(t, UTC) for t in scope.window)
        try:
            return await self._load_spend(scope.key_id, scope.user_email, start, end)
        except Exception as exc:
            log.exception("limits: cannot read spend from the database")
            raise GatewayError(
                503, "api_error", "Usage limits are temporarily unavailable; try again shortly"
            ) from exc

    async def _retry_forever(self) -> None:
        while True:
            await asyncio.sleep(RETRY_SETTLEMENTS_EVERY)
            await self._retry_unsettled()

    async def _retry_unsettled(self) -> None:
        assert self._redis is not None
        while self._unsettled:
            plan, tokens, nano = self._unsettled[0]
            try:
                await self._redis.settle(plan, tokens, nano, first=False)
            except BackendUnavailable:
                return
            self._unsettled.popleft()
