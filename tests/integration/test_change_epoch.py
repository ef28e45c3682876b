"""A revocation made by any process reaches every running gateway through the change epoch."""

from __future__ import annotations

import asyncio
import time

import httpx2

from gatepass import manage
from tests.conftest import GatepassFactory, Harness

BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 4,
    "messages": [{"role": "user", "content": "x"}],
}


def call(harness: Harness, key: str) -> int:
    return httpx2.post(
        harness.base + "/v1/messages", headers={"x-api-key": key}, json=BODY
    ).status_code


def check_epoch(harness: Harness) -> None:
    loop = harness.gateway.loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(harness.gateway.check_change_epoch(), loop).result(5)


def test_revocation_elsewhere_clears_the_cache_at_the_next_epoch_check(
    make_gatepass: GatepassFactory,
) -> None:
    harness = make_gatepass(key_cache_ttl=3600)
    key = harness.create_key("cached")
    assert call(harness, key) == 200
    harness.store(
        lambda s: manage.revoke_key(s, name="cached")
    )  # as the CLI would: no invalidate()
    assert call(harness, key) == 200  # still cached: nothing told this process yet
    check_epoch(harness)
    assert call(harness, key) == 401


def test_the_background_watcher_picks_up_revocations_by_itself(
    make_gatepass: GatepassFactory,
) -> None:
    harness = make_gatepass(key_cache_ttl=3600)
    key = harness.create_key("cached")
    assert call(harness, key) == 200
    harness.store(lambda s: manage.revoke_key(s, name="cached"))
    deadline = time.monotonic() + 10
    while call(harness, key) == 200:
        assert time.monotonic() < deadline, "revocation never reached the running gateway"
        time.sleep(0.05)


def test_rotation_elsewhere_retires_the_old_secret(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(key_cache_ttl=3600)
    old = harness.create_key("rotating")
    assert call(harness, old) == 200
    new = harness.store(lambda s: manage.rotate_key(s, harness.keyring, name="rotating")).secret
    check_epoch(harness)
    assert call(harness, old) == 401
    assert call(harness, new) == 200
