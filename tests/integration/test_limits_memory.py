"""Budgets and rate limits on one Gatepass (SQLite, in-process counters), over real HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from typer.testing import CliRunner

from gatepass import manage
from gatepass.cli import app as cli_app
from gatepass.devtools.fake_upstream import Scripted, StreamScript, sse
from gatepass.limits.memory import MemoryBackend
from gatepass.limits.pricing import PriceTable, estimate
from gatepass.limits.spec import LimitSpec
from gatepass.runtime import Gateway
from tests.conftest import GatepassFactory, Harness

MODEL = "claude-haiku-4-5"  # $1 in, $5 out per million tokens: 1 000 and 5 000 nano-USD a token
MAX_TOKENS = 16
BODY = orjson.dumps(
    {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "Hi"}]}
)
INPUT_ESTIMATE = math.ceil(len(BODY) / 4)
TOKENS, NANO = estimate(PriceTable().price([MODEL]), len(BODY), MAX_TOKENS)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def exact_message() -> Scripted:
    """An answer that uses exactly what the gateway reserved for BODY."""
    return Scripted(
        200,
        {
            "id": "msg_exact",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": INPUT_ESTIMATE, "output_tokens": MAX_TOKENS},
        },
    )


def limited_key(harness: Harness, name: str, **limits: Any) -> str:
    spec = LimitSpec.model_validate(limits)
    issued = harness.store(
        lambda s: manage.create_key(s, harness.keyring, name=name, models="*", limits=spec)
    )
    return issued.secret


def post(harness: Harness, key: str, body: bytes = BODY) -> httpx2.Response:
    return httpx2.post(
        harness.base + "/v1/messages",
        headers={"x-api-key": key, "content-type": "application/json"},
        content=body,
        timeout=30,
    )


def burst(harness: Harness, key: str, n: int) -> list[httpx2.Response]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: post(harness, key), range(n)))


def statuses(responses: list[httpx2.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def in_loop(gateway: Gateway, coroutine: Any) -> Any:
    assert gateway.loop is not None
    return asyncio.run_coroutine_threadsafe(coroutine, gateway.loop).result(10)


@pytest.fixture
def clock(gatepass: Harness) -> Clock:
    fake = Clock()
    gatepass.gateway.limits.clock = fake
    return fake


def test_concurrent_requests_admit_exactly_rpm(gatepass: Harness) -> None:
    key = limited_key(gatepass, "rpm", rpm=5)
    gatepass.fake.script(*(exact_message() for _ in range(5)))
    responses = burst(gatepass, key, 12)
    assert statuses(responses) == [200] * 5 + [429] * 7
    refused = [r for r in responses if r.status_code == 429]
    assert {r.json()["error"]["type"] for r in refused} == {"rate_limit_error"}
    assert all(r.headers["retry-after"].isdigit() for r in refused)
    assert len(gatepass.fake.requests) == 5


def test_concurrent_requests_admit_exactly_a_token_budget(gatepass: Harness) -> None:
    key = limited_key(gatepass, "tokens", budget_tokens=4 * TOKENS)
    gatepass.fake.script(*(exact_message() for _ in range(4)))
    assert statuses(burst(gatepass, key, 10)) == [200] * 4 + [429] * 6
    gatepass.wait_for_logs(4)  # settled before logged
    spent = post(gatepass, key)
    assert spent.status_code == 429
    assert spent.json()["error"]["type"] == "billing_error"
    assert len(gatepass.fake.requests) == 4


def test_concurrent_requests_admit_exactly_a_usd_budget(gatepass: Harness) -> None:
    budget = Decimal(3 * NANO) / 10**9
    key = limited_key(gatepass, "usd", budget_usd=budget)
    gatepass.fake.script(*(exact_message() for _ in range(3)))
    assert statuses(burst(gatepass, key, 10)) == [200] * 3 + [429] * 7
    rows = gatepass.wait_for_logs(3)
    assert sum(Decimal(str(r.cost_usd)) for r in rows) == budget
    assert post(gatepass, key).json()["error"]["type"] == "billing_error"


def test_a_spent_budget_answers_the_gateway_contract_429(gatepass: Harness) -> None:
    key = limited_key(gatepass, "spent", budget_usd="0", period="1mo")
    response = post(gatepass, key)
    assert response.status_code == 429
    headers = response.headers
    assert headers["x-should-retry"] == "false"
    assert int(headers["retry-after"]) > 0
    reset = int(headers["anthropic-ratelimit-unified-reset"])
    assert reset - time.time() == pytest.approx(int(headers["retry-after"]), abs=5)
    assert headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert headers["anthropic-ratelimit-unified-overage-reset"] == str(reset)
    assert headers["anthropic-ratelimit-unified-overage-utilization"] == "1"
    assert headers["anthropic-ratelimit-unified-overage-surpassed-threshold"] == "1"
    assert headers["anthropic-ratelimit-unified-overage-period"] == "monthly"
    assert headers["anthropic-ratelimit-unified-overage-disabled-reason"] == "org_spend_cap_reached"
    assert "anthropic-ratelimit-unified-representative-claim" not in headers
    assert "anthropic-ratelimit-unified-overage-status" not in headers
    error = response.json()["error"]
    assert error["type"] == "billing_error"
    assert "resets" in error["message"]
    assert "ask your administrator" in error["message"]
    assert gatepass.fake.requests == []


def test_successful_answers_carry_the_callers_standing_instead_of_the_upstreams(
    gatepass: Harness,
) -> None:
    capped = limited_key(gatepass, "capped", budget_usd="1")
    plain = gatepass.create_key("plain")
    standing = post(gatepass, capped).headers
    assert standing["anthropic-ratelimit-unified-status"] == "allowed"
    assert standing["anthropic-ratelimit-unified-overage-utilization"] == "0.00"
    assert standing["anthropic-ratelimit-unified-representative-claim"] == "overage"
    assert not [h for h in standing if h.startswith("anthropic-ratelimit-requests")]
    upstream = post(gatepass, plain).headers
    assert "anthropic-ratelimit-requests-limit" in upstream
    assert not [h for h in upstream if h.startswith("anthropic-ratelimit-unified")]


def test_budgets_reset_on_schedule(gatepass: Harness, clock: Clock) -> None:
    key = limited_key(gatepass, "minutely", budget_tokens=TOKENS, period="1m")
    gatepass.fake.script(exact_message(), exact_message())
    assert post(gatepass, key).status_code == 200
    gatepass.wait_for_logs(1)
    assert post(gatepass, key).json()["error"]["type"] == "billing_error"
    clock.advance(60)
    assert post(gatepass, key).status_code == 200


def stream_events(input_tokens: int) -> list[tuple[float, str]]:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_s",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "a"},
    }
    return [
        (0.0, sse("message_start", start)),
        (0.0, sse("content_block_delta", delta)),
        (math.inf, "never"),
    ]


def test_a_stream_the_client_abandons_is_still_charged(gatepass: Harness) -> None:
    key = limited_key(gatepass, "streamer", budget_usd="10")
    gatepass.fake.script(StreamScript(stream_events(2_000_000)))  # $2.00 of input
    body = orjson.dumps({**orjson.loads(BODY), "stream": True})
    with httpx2.stream(
        "POST",
        gatepass.base + "/v1/messages",
        headers={"x-api-key": key},
        content=body,
        timeout=30,
    ) as response:
        for chunk in response.iter_bytes():
            if b"content_block_delta" in chunk:
                break
    assert gatepass.fake.wait_for_disconnect(timeout=10)
    row = gatepass.wait_for_logs(1)[0]
    assert row.client_disconnected is True
    assert row.cost_usd == pytest.approx(2.000005)
    usage = httpx2.get(
        gatepass.base + "/api/oauth/usage", headers={"authorization": f"Bearer {key}"}
    )
    assert usage.json()["extra_usage"]["used_credits"] == pytest.approx(200.0)


def test_the_usage_endpoint_reports_a_capped_callers_spend(gatepass: Harness) -> None:
    key = limited_key(gatepass, "reported", budget_usd="500")
    gatepass.fake.script(
        StreamScript(
            [*stream_events(100000000)[:1], (0.0, sse("message_stop", {"type": "message_stop"}))]
        )
    )
    body = orjson.dumps({**orjson.loads(BODY), "stream": True})
    assert post(gatepass, key, body).status_code == 200
    gatepass.wait_for_logs(1)
    response = httpx2.get(
        gatepass.base + "/api/oauth/usage", headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    document = response.json()
    extra = document["extra_usage"]
    assert extra["monthly_limit"] == 50_000
    assert extra["used_credits"] == pytest.approx(10_000.0005)
    assert (extra["utilization"], extra["currency"], extra["is_enabled"]) == (20, "USD", True)
    (row,) = document["limits"]
    assert (row["kind"], row["group"], row["percent"], row["is_active"]) == (
        "spend",
        "monthly",
        20,
        True,
    )
    standing = post(gatepass, key).headers
    reset = int(standing["anthropic-ratelimit-unified-overage-reset"])
    assert row["resets_at"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(reset))


def test_the_usage_endpoint_reports_spend_without_a_cap(gatepass: Harness) -> None:
    key = gatepass.create_key("uncapped")
    gatepass.fake.script(exact_message())
    assert post(gatepass, key).status_code == 200
    gatepass.wait_for_logs(1)
    document = httpx2.get(gatepass.base + "/api/oauth/usage", headers={"x-api-key": key}).json()
    cents = NANO / 10**7
    assert document == {
        "extra_usage": {
            "is_enabled": True,
            "monthly_limit": None,
            "used_credits": round(cents, 2),
            "utilization": None,
            "currency": "USD",
            "daily": {"limit": None, "used_credits": round(cents, 2), "utilization": None},
            "weekly": {"limit": None, "used_credits": round(cents, 2), "utilization": None},
        },
        "limits": [],
    }


def test_every_request_is_costed_in_the_log(gatepass: Harness) -> None:
    key = gatepass.create_key("costed")
    gatepass.fake.script(exact_message())
    assert post(gatepass, key).status_code == 200
    counted = httpx2.post(
        gatepass.base + "/v1/messages/count_tokens",
        headers={"x-api-key": key},
        json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert counted.status_code == 200
    rows = gatepass.wait_for_logs(2)
    assert rows[0].cost_usd == pytest.approx(NANO / 10**9)
    assert rows[1].cost_usd is None


def test_spend_survives_a_restart_of_the_counters(gatepass: Harness) -> None:
    key = limited_key(gatepass, "durable", budget_tokens=TOKENS)
    gatepass.fake.script(exact_message())
    assert post(gatepass, key).status_code == 200
    gatepass.wait_for_logs(1)
    gatepass.gateway.limits._local = MemoryBackend()  # what a restart leaves: empty counters
    assert post(gatepass, key).json()["error"]["type"] == "billing_error"


def test_limit_changes_reach_the_running_gateway(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(key_cache_ttl=3600)
    key = limited_key(harness, "changing", rpm=1)
    assert post(harness, key).status_code == 200
    assert post(harness, key).status_code == 429
    harness.store(lambda s: manage.update_key(s, name="changing", limits=LimitSpec(rpm="off")))
    in_loop(harness.gateway, harness.gateway.check_change_epoch())
    assert post(harness, key).status_code == 200


def test_keys_create_and_update_take_limit_flags(config: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(cli_app, [*args, "--config", str(config)], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        return result

    created = run(
        "keys", "create", "--name", "team", "--models", "*", "--budget-usd", "50",
        "--period", "1mo", "--rpm", "60", "--tpm", "100000", "--max-concurrent", "4",
        "--per-user-budget-usd", "10", "--json",
    )  # fmt: skip
    limits = json.loads(created.stdout)["limits"]
    assert limits == {
        "budget_usd": 50.0,
        "rpm": 60,
        "tpm": 100000,
        "max_concurrent": 4,
        "per_user_budget_usd": 10.0,
        "period": "1mo",
        "reset": "calendar",
    }
    updated = run(
        "keys", "update", "team", "--rpm", "off", "--period", "1w", "--reset", "rolling",
        "--budget-tokens", "1000000", "--json",
    )  # fmt: skip
    limits = json.loads(updated.stdout)["limits"]
    assert "rpm" not in limits
    assert (limits["period"], limits["reset"], limits["budget_tokens"]) == (
        "1w",
        "rolling",
        1000000,
    )
    refused = runner.invoke(
        cli_app, ["keys", "update", "team", "--rpm", "0", "--config", str(config)]
    )
    assert refused.exit_code == 1
    assert "rpm" in refused.stderr


def test_apply_declares_limits_and_is_idempotent(gatepass: Harness, tmp_path: Path) -> None:
    from gatepass.manage.declarative import apply_declaration, load_declaration
    from gatepass.store import queries

    path = tmp_path / "keys.toml"
    path.write_text(
        '[[keys]]\nname = "declared"\nmodels = ["*"]\nbudget_usd = 25\nperiod = "1w"\n'
        'reset = "rolling"\nper_user_rpm = 5\n',
        encoding="utf-8",
    )
    declared = load_declaration(path)
    assert len(gatepass.store(lambda s: apply_declaration(s, gatepass.keyring, declared))) == 1
    first = gatepass.store(lambda s: queries.get_key_by_name(s, name="declared"))
    assert first is not None
    assert gatepass.store(lambda s: apply_declaration(s, gatepass.keyring, declared)) == []
    again = gatepass.store(lambda s: queries.get_key_by_name(s, name="declared"))
    assert again is not None
    assert (again.budget_usd, again.budget_period, again.budget_rolling, again.user_rpm) == (
        25.0,
        "1w",
        True,
        5,
    )
    assert again.budget_anchor_at == first.budget_anchor_at  # re-applying does not restart it
