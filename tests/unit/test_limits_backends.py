"""The reservation scheme on both backends (memory, and a real Redis at 127.0.0.1:6379).

Redis tests fail when Redis is unreachable (CI starts it); `GATEPASS_SKIP_REDIS=1` skips them.
Each test uses its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import calendar
import os
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import redis

from gatepass.config import LimitsSettings, Settings
from gatepass.limits.caps import Caps, KeyLimits
from gatepass.limits.limiter import Limiter, Ticket
from gatepass.limits.periods import Period
from gatepass.limits.plan import Plan, Used
from gatepass.policy.principal import Principal
from gatepass.proxy.errors import GatewayError
from gatepass.proxy.usage import Usage

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = float(calendar.timegm((2026, 3, 31, 23, 59, 0)))  # a minute before April
USER_A = "alice@corp.example"
USER_B = "bob@corp.example"


def require_redis(url: str = REDIS_URL) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("GATEPASS_SKIP_REDIS") == "1":
            pytest.skip("Redis not reachable and GATEPASS_SKIP_REDIS=1")
        pytest.fail(
            f"Redis is not reachable at {url} ({exc}). Start it (CI does), "
            "or set GATEPASS_SKIP_REDIS=1 to skip these tests.",
            pytrace=False,
        )


def delete_prefix(prefix: str, url: str = REDIS_URL) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Spend:
    """The request log as the limiter sees it when it seeds a window."""

    def __init__(self) -> None:
        self.logged: dict[tuple[int, str | None], Used] = {}
        self.calls = 0

    async def __call__(self, key_id: int, user: str | None, start: datetime, end: datetime) -> Used:
        self.calls += 1
        return self.logged.get((key_id, user), Used())


def principal(
    key: Caps, user: Caps | None = None, email: str | None = None, **kw: Any
) -> Principal:
    limits = KeyLimits(
        key, user or Caps(), kw.pop("period", Period(1, "mo")), kw.pop("anchor", None)
    )
    return Principal(1, "team", ("*",), None, False, user_email=email, limits=limits)


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    made: list[Limiter] = []
    prefix = f"gatepass-test:{secrets.token_hex(6)}:"
    if request.param == "redis":
        require_redis()

    async def make(
        clock: Clock | None = None, spend: Spend | None = None, **limits: Any
    ) -> Limiter:
        values: dict[str, Any] = {"secret_key": "x" * 32}
        if request.param == "redis":
            values["redis_url"] = REDIS_URL
            limits.setdefault("redis_prefix", prefix)
        settings = Settings(**values, limits=LimitsSettings(**limits))
        limiter = Limiter(settings, spend or Spend(), clock or Clock())
        await limiter.start()
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()
    if request.param == "redis":
        delete_prefix(prefix)


async def admit(limiter: Limiter, who: Principal, tokens: int = 10, nano: int = 1000) -> Ticket:
    plan = limiter.plan(who, request_id=secrets.token_hex(8), tokens=tokens, nano=nano)
    assert plan is not None
    return await limiter.admit(plan)


async def outcomes(
    limiter: Limiter, who: Principal, n: int, **kw: int
) -> list[Ticket | GatewayError]:
    async def one() -> Ticket | GatewayError:
        try:
            return await admit(limiter, who, **kw)
        except GatewayError as error:
            return error

    return list(await asyncio.gather(*(one() for _ in range(n))))


def tickets(results: list[Ticket | GatewayError]) -> list[Ticket]:
    return [r for r in results if isinstance(r, Ticket)]


def errors(results: list[Ticket | GatewayError]) -> list[GatewayError]:
    return [r for r in results if isinstance(r, GatewayError)]


def header(error: GatewayError, name: str) -> str | None:
    return next((v.decode() for k, v in error.headers if k.decode() == name), None)


async def settle(limiter: Limiter, ticket: Ticket, tokens: int = 10, nano: int = 1000) -> None:
    await limiter.settle(ticket, Usage(input_tokens=tokens), nano)


async def test_concurrent_requests_against_an_rpm_of_k_admit_exactly_k(make_limiter: Any) -> None:
    limiter = await make_limiter()
    results = await outcomes(limiter, principal(Caps(rpm=7)), 30)
    assert len(tickets(results)) == 7
    refused = errors(results)
    assert {(e.status, e.type) for e in refused} == {(429, "rate_limit_error")}
    assert {header(e, "retry-after") for e in refused} == {"60"}


async def test_a_burst_larger_than_the_connection_pool_queues_instead_of_failing(
    make_limiter: Any,
) -> None:
    # 400 admissions and settlements at once over 4 connections: none may read as Redis down
    limiter = await make_limiter(redis_connections=4)
    who = principal(Caps(rpm=10_000, budget_tokens=10**9))
    admitted = tickets(await outcomes(limiter, who, 400))
    assert len(admitted) == 400
    await asyncio.gather(*(settle(limiter, ticket) for ticket in admitted))
    results = await outcomes(limiter, who, 400)
    assert len(tickets(results)) == 400, {(e.status, e.message) for e in errors(results)}


async def test_concurrent_requests_against_a_token_budget_admit_exactly_k(
    make_limiter: Any,
) -> None:
    limiter = await make_limiter()
    who = principal(Caps(budget_tokens=5 * 100))
    admitted = tickets(await outcomes(limiter, who, 20, tokens=100))
    assert len(admitted) == 5
    for ticket in admitted:
        await settle(limiter, ticket, tokens=100)
    spent = errors(await outcomes(limiter, who, 3, tokens=100))
    assert [e.type for e in spent] == ["billing_error"] * 3


async def test_concurrent_requests_against_a_usd_budget_admit_exactly_k(make_limiter: Any) -> None:
    limiter = await make_limiter()
    who = principal(Caps(budget_nano=4 * 123_456_789))
    admitted = tickets(await outcomes(limiter, who, 20, nano=123_456_789))
    assert len(admitted) == 4
    for ticket in admitted:
        await settle(limiter, ticket, nano=123_456_789)
    refusal = errors(await outcomes(limiter, who, 1))[0]
    assert refusal.type == "billing_error"
    assert refusal.retry is False
    assert header(refusal, "retry-after") == "60"  # T0 is a minute before the month ends


async def test_max_concurrent_counts_requests_in_flight(make_limiter: Any) -> None:
    limiter = await make_limiter()
    who = principal(Caps(max_concurrent=3))
    first = tickets(await outcomes(limiter, who, 10))
    assert len(first) == 3
    await settle(limiter, first[0])
    assert len(tickets(await outcomes(limiter, who, 10))) == 1


async def test_room_held_by_requests_in_flight_is_throttling_not_billing(make_limiter: Any) -> None:
    limiter = await make_limiter()
    who = principal(Caps(budget_tokens=1_000))
    big = await admit(limiter, who, tokens=5_000)  # alone: admitted although it may overrun
    refused = errors(await outcomes(limiter, who, 1, tokens=10))[0]
    assert (refused.type, header(refused, "retry-after")) == ("rate_limit_error", "1")
    await settle(limiter, big, tokens=1_200)  # overran: charged in full
    spent = errors(await outcomes(limiter, who, 1, tokens=10))[0]
    assert spent.type == "billing_error"


async def test_settlement_replaces_the_estimate_with_what_was_used(make_limiter: Any) -> None:
    limiter = await make_limiter()
    who = principal(Caps(budget_tokens=1_000))
    ticket = await admit(limiter, who, tokens=900)
    await settle(limiter, ticket, tokens=100)
    assert len(tickets(await outcomes(limiter, who, 9, tokens=100))) == 9
    assert errors(await outcomes(limiter, who, 1, tokens=100))


async def test_budgets_reset_at_the_calendar_boundary(make_limiter: Any) -> None:
    clock = Clock()
    limiter = await make_limiter(clock)
    who = principal(Caps(budget_tokens=100), period=Period(1, "m"))
    await settle(limiter, await admit(limiter, who, tokens=100), tokens=100)
    assert errors(await outcomes(limiter, who, 1))[0].type == "billing_error"
    clock.advance(59.999)
    assert errors(await outcomes(limiter, who, 1))[0].type == "billing_error"
    clock.advance(0.001)
    assert len(tickets(await outcomes(limiter, who, 1))) == 1


async def test_rpm_resets_on_the_next_minute(make_limiter: Any) -> None:
    clock = Clock(T0 + 30)
    limiter = await make_limiter(clock)
    who = principal(Caps(rpm=2))
    assert len(tickets(await outcomes(limiter, who, 5))) == 2
    refusal = errors(await outcomes(limiter, who, 1))[0]
    assert header(refusal, "retry-after") == "30"
    clock.advance(30)
    assert len(tickets(await outcomes(limiter, who, 5))) == 2


async def test_tpm_counts_tokens_used_this_minute(make_limiter: Any) -> None:
    clock = Clock()
    limiter = await make_limiter(clock)
    who = principal(Caps(tpm=300))
    for ticket in tickets(await outcomes(limiter, who, 10, tokens=100)):
        await settle(limiter, ticket, tokens=100)
    refusal = errors(await outcomes(limiter, who, 1, tokens=100))[0]
    assert refusal.type == "rate_limit_error"
    assert "300 tokens per minute" in refusal.message
    clock.advance(60)
    assert tickets(await outcomes(limiter, who, 1, tokens=100))


async def test_each_user_of_a_shared_key_gets_their_own_budget(make_limiter: Any) -> None:
    limiter = await make_limiter()
    key, user = Caps(budget_nano=10_000), Caps(budget_nano=3_000)
    alice, bob = principal(key, user, USER_A), principal(key, user, USER_B)
    for ticket in tickets(await outcomes(limiter, alice, 10, nano=1_000)):
        await settle(limiter, ticket, nano=1_000)
    refused = errors(await outcomes(limiter, alice, 1, nano=1_000))[0]
    assert refused.type == "billing_error"
    assert USER_A in refused.message
    assert header(refused, "anthropic-ratelimit-unified-overage-scope") is None
    assert len(tickets(await outcomes(limiter, bob, 10, nano=1_000))) == 3


async def test_the_group_pool_stops_every_user_once_spent(make_limiter: Any) -> None:
    limiter = await make_limiter()
    key, user = Caps(budget_nano=5_000), Caps(budget_nano=3_000)
    for email in (USER_A, USER_B):
        for ticket in tickets(await outcomes(limiter, principal(key, user, email), 3, nano=1_000)):
            await settle(limiter, ticket, nano=1_000)
    carol = principal(key, user, "carol@corp.example")
    refused = errors(await outcomes(limiter, carol, 1, nano=1_000))[0]
    assert refused.type == "billing_error"
    assert header(refused, "anthropic-ratelimit-unified-overage-scope") == "group_pool"


async def test_static_callers_are_held_to_the_key_limits_only(make_limiter: Any) -> None:
    limiter = await make_limiter()
    who = principal(Caps(rpm=5), Caps(rpm=1))
    assert len(tickets(await outcomes(limiter, who, 10))) == 5
    only_users = principal(Caps(), Caps(rpm=1))
    assert limiter.plan(only_users, request_id="r") is None


async def test_a_window_is_seeded_once_from_the_request_log(make_limiter: Any) -> None:
    spend = Spend()
    spend.logged[(1, None)] = Used(tokens=950, nano=0)
    limiter = await make_limiter(spend=spend)
    who = principal(Caps(budget_tokens=1_000))
    ticket = tickets(await outcomes(limiter, who, 5, tokens=50))
    assert len(ticket) == 1
    await settle(limiter, ticket[0], tokens=50)
    assert errors(await outcomes(limiter, who, 1))[0].type == "billing_error"
    assert spend.calls == 1


async def test_an_unsettled_reservation_expires_after_its_lease(make_limiter: Any) -> None:
    clock = Clock()
    limiter = await make_limiter(clock, lease=30)
    who = principal(Caps(max_concurrent=1))
    await admit(limiter, who)  # never settled: its replica died
    assert errors(await outcomes(limiter, who, 1))
    clock.advance(30)
    assert tickets(await outcomes(limiter, who, 1))


async def test_a_retried_settlement_is_never_charged_twice(make_limiter: Any) -> None:
    limiter = await make_limiter()
    who = principal(Caps(budget_tokens=100))
    ticket = await admit(limiter, who, tokens=50)
    await ticket.backend.settle(ticket.plan, 50, 0)
    await ticket.backend.settle(ticket.plan, 50, 0, first=False)  # the reply had been lost
    assert len(tickets(await outcomes(limiter, who, 1, tokens=50))) == 1


async def test_standing_headers_describe_the_fullest_budget(make_limiter: Any) -> None:
    limiter = await make_limiter()
    who = principal(Caps(budget_tokens=1_000, budget_nano=10**9))
    await settle(limiter, await admit(limiter, who, tokens=800), tokens=800, nano=10**8)
    headers = dict((k.decode(), v.decode()) for k, v in (await admit(limiter, who)).headers())
    assert headers["anthropic-ratelimit-unified-status"] == "allowed_warning"
    assert headers["anthropic-ratelimit-unified-overage-utilization"] == "0.80"
    assert headers["anthropic-ratelimit-unified-overage-surpassed-threshold"] == "0.75"
    assert headers["anthropic-ratelimit-unified-reset"] == str(int(T0) + 60)


def test_plans_are_none_for_keys_without_limits() -> None:
    limiter = Limiter(Settings(secret_key="x" * 32), Spend())
    bare = Principal(1, "team", ("*",), None, False)
    assert limiter.plan(bare, request_id="r") is None
    assert isinstance(limiter.plan(principal(Caps(rpm=1)), request_id="r"), Plan)
