"""Per-user limits inside a key that a whole group shares, with people signed in through
Claude Desktop's flow: each user spends their own budget; the key's other users go on."""

from __future__ import annotations

import time

import httpx2
import orjson

from gatepass import manage
from gatepass.limits.spec import LimitSpec
from gatepass.manage import identity as identity_ops
from tests.conftest import IDP_NAME, SignIn
from tests.e2e.desktop import DesktopClient


def exact_body() -> bytes:
    """Estimate (bytes / 4 + max_tokens) equals what the fake reports (bytes // 4 + 5)."""
    text = "Hi"
    while True:
        body = orjson.dumps(
            {
                "model": "claude-haiku-4-5",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": text}],
            }
        )
        if len(body) % 4 == 0:
            return body
        text += "!"


BODY = exact_body()
ONE_REQUEST = len(BODY) // 4 + 5  # tokens


def post(signin: SignIn, token: str) -> httpx2.Response:
    return httpx2.post(
        signin.gatepass.base + "/v1/messages",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        content=BODY,
        timeout=30,
    )


def test_each_user_of_a_shared_key_has_their_own_budget(signin: SignIn) -> None:
    spec = LimitSpec.model_validate(
        {"per_user_budget_tokens": ONE_REQUEST, "period": "1mo", "reset": "rolling"}
    )
    signin.gatepass.store(
        lambda s: manage.create_key(
            s, signin.gatepass.keyring, name="team", models="*", limits=spec
        )
    )

    async def map_everyone_to_team(session: object) -> None:
        for group in ("engineering", "sales"):
            await identity_ops.add_mapping(
                session, idp=IDP_NAME, group=group, key="team", priority=1
            )  # type: ignore[arg-type]

    signin.gatepass.store(map_everyone_to_team)  # type: ignore[arg-type]
    alice = DesktopClient(signin.issuer).sign_in(
        login="alice@corp.example", password="alice-password"
    )
    bob = DesktopClient(signin.issuer).sign_in(login="bob@corp.example", password="bob-password")

    assert post(signin, alice["access_token"]).status_code == 200
    deadline = time.monotonic() + 10
    refused = post(signin, alice["access_token"])
    assert refused.status_code == 429, "alice's second request should be refused"
    while refused.json()["error"]["type"] != "billing_error":  # until the first is settled
        assert time.monotonic() < deadline, refused.text
        time.sleep(0.05)
        refused = post(signin, alice["access_token"])
    assert refused.headers["x-should-retry"] == "false"
    assert "group_pool" not in refused.headers.get("anthropic-ratelimit-unified-overage-scope", "")

    # bob shares the key but not alice's budget
    answer = post(signin, bob["access_token"])
    assert answer.status_code == 200, answer.text
    rows = signin.gatepass.wait_for_logs(2)
    assert {(r.user_email, r.key_name) for r in rows if r.status == 200} == {
        ("alice@corp.example", "team"),
        ("bob@corp.example", "team"),
    }
