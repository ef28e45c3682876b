"""Two Gatepass replicas on loopback sharing PostgreSQL and Redis, and Redis going away.

PostgreSQL as in test_postgres (a fresh database per test); Redis at 127.0.0.1:6379 with a
key prefix per test, deleted afterwards. Unreachable services fail these tests unless
`GATEPASS_SKIP_POSTGRES=1` / `GATEPASS_SKIP_REDIS=1`. The outage test runs its own
`redis-server` on a free port and stops and restarts it.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import Any

import httpx2
import orjson
import pytest
import redis

from gatepass import manage
from gatepass.app import create_app
from gatepass.config import load_settings
from gatepass.devtools.fake_upstream import StreamScript
from gatepass.devtools.server import serve_in_thread
from gatepass.limits.caps import Caps, KeyLimits
from gatepass.limits.limiter import Limiter
from gatepass.limits.plan import Used
from gatepass.policy.principal import Principal
from gatepass.proxy.errors import GatewayError
from gatepass.runtime import Gateway
from tests.conftest import SECRET_KEY, GatepassFactory, Harness, Upstream, seed
from tests.integration.test_limits_memory import (
    BODY,
    NANO,
    TOKENS,
    Clock,
    exact_message,
    limited_key,
    post,
    statuses,
    stream_events,
)
from tests.integration.test_postgres import pg_empty, pg_url  # noqa: F401  (fixtures)
from tests.unit.test_limits_backends import REDIS_URL, delete_prefix, require_redis

Replicas = tuple[Harness, Harness]


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    require_redis()
    prefix = f"gatepass-test:{secrets.token_hex(6)}:"
    yield prefix
    delete_prefix(prefix)


@contextmanager
def replica(database_url: str, upstream: Upstream, **overrides: Any) -> Iterator[Harness]:
    settings = load_settings(
        environ={},
        environment="development",
        database_url=database_url,
        secret_key=SECRET_KEY,
        log_flush_interval=0.02,
        **overrides,
    )
    gateway = Gateway(settings)
    harness = Harness(settings, gateway, upstream)
    seed(harness, upstream.url)
    with serve_in_thread(create_app(settings, gateway)) as url:
        harness.url = url
        gateway.log_writer.on_written.append(harness.on_written)
        yield harness


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replicas(
    pg_url: str,  # noqa: F811
    upstream: Upstream,
    redis_prefix: str,
    clock: Clock,
) -> Iterator[Replicas]:
    with ExitStack() as stack:
        pair = tuple(
            stack.enter_context(
                replica(
                    pg_url,
                    upstream,
                    redis_url=REDIS_URL,
                    key_cache_ttl=3600,
                    limits={"redis_prefix": redis_prefix},
                )
            )
            for _ in range(2)
        )
        for harness in pair:
            harness.gateway.limits.clock = clock
        yield pair  # type: ignore[misc]


def burst_across(pair: Replicas, key: str, n: int) -> list[httpx2.Response]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda i: post(pair[i % 2], key), range(n)))


def test_two_replicas_admit_exactly_k_requests_tokens_and_dollars(replicas: Replicas) -> None:
    a = replicas[0]
    by_rpm = limited_key(a, "rpm", rpm=6)
    by_tokens = limited_key(a, "tokens", budget_tokens=4 * TOKENS)
    by_usd = limited_key(a, "usd", budget_usd=Decimal(5 * NANO) / 10**9)
    a.fake.script(*(exact_message() for _ in range(6 + 4 + 5)))
    assert statuses(burst_across(replicas, by_rpm, 16)) == [200] * 6 + [429] * 10
    assert statuses(burst_across(replicas, by_tokens, 16)) == [200] * 4 + [429] * 12
    assert statuses(burst_across(replicas, by_usd, 16)) == [200] * 5 + [429] * 11
    assert len(a.fake.requests) == 15
    deadline = time.monotonic() + 10
    while len(a.wait_for_logs(0)) < 15:  # both replicas write to the shared table
        assert time.monotonic() < deadline, "log rows never arrived"
        time.sleep(0.02)
    for key in (by_tokens, by_usd):
        for harness in replicas:
            assert post(harness, key).json()["error"]["type"] == "billing_error"


def test_limits_reset_on_schedule_on_every_replica(replicas: Replicas, clock: Clock) -> None:
    a, b = replicas
    key = limited_key(a, "minutely", budget_tokens=TOKENS, period="1m")
    a.fake.script(exact_message(), exact_message())
    assert post(a, key).status_code == 200
    a.wait_for_logs(1)
    assert post(b, key).json()["error"]["type"] == "billing_error"
    clock.advance(60)
    assert post(b, key).status_code == 200
    assert post(a, key).json()["error"]["type"] == "billing_error"


def test_a_revocation_reaches_the_other_replica_within_a_second(replicas: Replicas) -> None:
    a, b = replicas
    key = limited_key(a, "revoked", rpm=1000)
    assert post(a, key).status_code == 200
    assert post(b, key).status_code == 200  # cached for an hour (key_cache_ttl)
    a.store(lambda s: manage.revoke_key(s, name="revoked"))  # as the CLI would
    deadline = time.monotonic() + 3  # one epoch poll (1 s) plus slack for a loaded machine
    while post(b, key).status_code == 200:
        assert time.monotonic() < deadline, "replica B kept accepting a revoked key"
        time.sleep(0.05)
    assert post(b, key).status_code == 401


def test_a_stream_abandoned_on_one_replica_is_charged_on_both(replicas: Replicas) -> None:
    a, b = replicas
    key = limited_key(a, "streamer", budget_tokens=1_000)
    a.fake.script(StreamScript(stream_events(999)))  # 999 in + 1 out: the whole budget
    body = orjson.dumps({**orjson.loads(BODY), "stream": True})
    with httpx2.stream(
        "POST", a.base + "/v1/messages", headers={"x-api-key": key}, content=body, timeout=30
    ) as response:
        for chunk in response.iter_bytes():
            if b"content_block_delta" in chunk:
                break
    assert a.fake.wait_for_disconnect(timeout=10)
    row = a.wait_for_logs(1)[0]
    assert (row.client_disconnected, row.input_tokens) == (True, 999)
    assert post(b, key).json()["error"]["type"] == "billing_error"


async def test_users_of_a_shared_key_have_their_own_limits_across_replicas(
    redis_prefix: str,
) -> None:
    async def no_spend(*_: Any) -> Used:
        return Used()

    settings = load_settings(
        environ={},
        secret_key=SECRET_KEY,
        redis_url=REDIS_URL,
        limits={"redis_prefix": redis_prefix},
    )
    one, two = Limiter(settings, no_spend), Limiter(settings, no_spend)
    await one.start()
    await two.start()
    limits = KeyLimits(Caps(rpm=10), Caps(rpm=2))

    def user(email: str) -> Principal:
        return Principal(7, "shared", ("*",), None, False, user_email=email, limits=limits)

    async def admitted(limiter: Limiter, who: Principal) -> bool:
        plan = limiter.plan(who, request_id=secrets.token_hex(8))
        assert plan is not None
        try:
            await limiter.admit(plan)
        except GatewayError:
            return False
        return True

    try:
        alice, bob = user("alice@corp.example"), user("bob@corp.example")
        assert [await admitted(x, alice) for x in (one, two, one)] == [True, True, False]
        assert [await admitted(x, bob) for x in (two, one, two)] == [True, True, False]
    finally:
        await one.close()
        await two.close()


# Redis going away and coming back


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("GATEPASS_SKIP_REDIS") == "1":
                pytest.skip("redis-server not installed and GATEPASS_SKIP_REDIS=1")
            pytest.fail("redis-server is not installed (CI installs it)", pytrace=False)
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


def until(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_redis_going_away_fails_closed_and_recovers_with_the_spend_intact(
    make_gatepass: GatepassFactory, own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    harness = make_gatepass(redis_url=own_redis.url, limits={"redis_retry_interval": 0})
    key = limited_key(harness, "durable", budget_tokens=2 * TOKENS)
    plain = harness.create_key("plain")
    harness.fake.script(*(exact_message() for _ in range(3)))
    assert post(harness, key).status_code == 200
    harness.wait_for_logs(1)

    own_redis.stop()
    with caplog.at_level(logging.ERROR, logger="gatepass.limits"):
        refused = post(harness, key)
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "api_error"
    assert "limits store is unreachable" in refused.json()["error"]["message"]
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    assert post(harness, plain).status_code == 200  # no limits: Redis is not needed

    own_redis.start()  # empty: the spent budget comes back from the request log
    until(lambda: post(harness, key).status_code != 503, "never recovered from the outage")
    harness.wait_for_logs(3)
    assert post(harness, key).json()["error"]["type"] == "billing_error"


def test_redis_going_away_can_fall_back_to_local_counters(
    make_gatepass: GatepassFactory, own_redis: RedisProcess
) -> None:
    harness = make_gatepass(
        redis_url=own_redis.url,
        limits={"redis_retry_interval": 0, "on_redis_error": "local"},
    )
    key = limited_key(harness, "local", rpm=2)
    own_redis.stop()
    assert [post(harness, key).status_code for _ in range(3)] == [200, 200, 429]
