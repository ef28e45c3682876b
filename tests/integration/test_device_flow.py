"""The device flow as Claude Code's `/login` (gateway mode) and Desktop without OIDC settings
drive it: discovery, device authorization, the browser's approval, polling, the bearer at the
proxy, refresh, deprovisioning and sign-out."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.manage import identity as identity_ops
from gatepass.store.events import AuditEvent
from gatepass.store.oauth import DeviceAuthorization
from gatepass.store.types import utcnow
from tests.conftest import SignIn
from tests.integration import test_device_support as support
from tests.integration.test_device_support import (
    DEVICE_GRANT,
    STREAM,
    Devices,
    allow_next_poll,
    check_epoch,
    edit_request,
    expire,
    stream_message,
)

devices = support.devices  # fixture


@pytest.mark.parametrize("prefix", ["", "/anthropic"])
def test_metadata_is_served_directly_at_the_root_and_under_the_base_url(
    signin: SignIn, prefix: str
) -> None:
    url = signin.gatepass.url + prefix + "/.well-known/oauth-authorization-server"
    response = httpx2.get(url, follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    meta = response.json()
    base = signin.issuer
    assert meta["issuer"] == base
    assert meta["device_authorization_endpoint"] == f"{base}/oauth/device_authorization"
    assert meta["token_endpoint"] == f"{base}/oauth/token"
    assert meta["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert meta["grant_types_supported"] == [DEVICE_GRANT, "refresh_token"]
    assert meta["token_endpoint_auth_methods_supported"] == ["none"]
    assert "authorization_endpoint" not in meta


def test_device_flow_from_discovery_to_a_streamed_message(signin: SignIn, devices: Devices) -> None:
    client = devices.client()
    client.discover()
    grant = client.authorize()
    assert set(grant) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert grant["verification_uri"] == signin.issuer + "/device"
    assert grant["verification_uri_complete"] == (
        f"{signin.issuer}/device?user_code={grant['user_code']}"
    )
    assert grant["expires_in"] == 600
    assert grant["interval"] == 5
    assert len(grant["device_code"]) >= 43  # 256 bits, base64url

    # the user opens verification_uri_complete: the code is filled in, nothing is submitted
    browser = devices.browser()
    form = browser.open(grant["verification_uri_complete"])
    assert form.status_code == 200
    assert f'value="{grant["user_code"]}"' in form.text
    assert "<script" not in form.text
    assert client.poll(grant["device_code"]).json()["error"] == "authorization_pending"

    confirm = browser.sign_in(
        browser.enter_code(grant["user_code"], form),
        login="alice@corp.example",
        password="alice-password",
    )
    assert confirm.status_code == 200
    # who is asking, from where and when; who signed in
    assert "alice@corp.example" in confirm.text
    assert "Claude Code" in confirm.text
    assert "127.0.0.1" in confirm.text
    assert "claude-code/2.1.331" in confirm.text
    assert grant["user_code"] in confirm.text
    assert confirm.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in confirm.headers["content-security-policy"]
    # still pending until the user approves
    allow_next_poll(signin, grant["user_code"])
    assert client.poll(grant["device_code"]).json()["error"] == "authorization_pending"
    assert browser.decide(confirm, "approve").status_code == 200

    allow_next_poll(signin, grant["user_code"])
    response = client.poll(grant["device_code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["email"] == "alice@corp.example"
    assert tokens["expires_in"] == signin.gatepass.settings.sign_in.access_token_ttl
    assert tokens["refresh_token"]

    # a Gatepass access token for the API it fronts, naming the surface as client
    jwks = KeySet.import_key_set(httpx2.get(signin.issuer + "/oauth/jwks").json())
    claims = jwt.decode(tokens["access_token"], jwks).claims
    assert claims["aud"] == signin.issuer + "/anthropic"
    assert claims["client_id"] == "claude_code"
    assert claims["email"] == "alice@corp.example"

    streamed = stream_message(signin, tokens["access_token"])
    assert streamed.status_code == 200
    assert b"event: message_stop" in streamed.content
    row = signin.gatepass.wait_for_logs(1)[-1]
    assert row.user_email == "alice@corp.example"
    assert row.key_name == "eng-key"
    assert signin.gatepass.fake.requests[-1].header("authorization") is None


def test_token_endpoint_errors_come_in_order_then_tokens_once(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    grant = client.authorize()
    code, user_code = grant["device_code"], grant["user_code"]

    first = client.poll(code)
    assert (first.status_code, first.json()["error"]) == (400, "authorization_pending")
    assert first.headers["cache-control"] == "no-store"
    # polled again at once, well within the 5 s interval
    edit_request(signin, user_code, poll_interval=3600)  # "at once", whatever the machine
    fast = client.poll(code)
    assert (fast.status_code, fast.json()["error"]) == (400, "slow_down")
    edit_request(signin, user_code, poll_interval=5)
    allow_next_poll(signin, user_code)
    assert client.poll(code).json()["error"] == "authorization_pending"

    devices.browser().approve_code(user_code)
    tokens = client.poll(code)
    assert tokens.status_code == 200
    again = client.poll(code)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_slow_down_raises_the_stored_interval_by_five_seconds(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    grant = client.authorize()
    assert client.poll(grant["device_code"]).json()["error"] == "authorization_pending"
    assert client.poll(grant["device_code"]).json()["error"] == "slow_down"

    async def read(session: AsyncSession) -> int:
        return (await session.exec(select(DeviceAuthorization))).one().poll_interval

    assert signin.gatepass.store(read) == 10


def test_a_denied_request_answers_access_denied_and_is_audited(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    grant = client.authorize()
    page = devices.browser().approve_code(grant["user_code"], decision="deny")
    assert "denied" in page.text
    for _ in range(2):
        response = client.poll(grant["device_code"])
        assert (response.status_code, response.json()["error"]) == (400, "access_denied")

    async def decisions(session: AsyncSession) -> list[tuple[str | None, str | None]]:
        query = select(AuditEvent).where(col(AuditEvent.action).startswith("device."))
        return [(e.actor, e.action) for e in (await session.exec(query)).all()]

    assert signin.gatepass.store(decisions) == [("alice@corp.example", "device.deny")]


def test_an_expired_code_answers_expired_token_and_cannot_be_approved(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    grant = client.authorize()
    expire(signin, grant["user_code"])
    response = client.poll(grant["device_code"])
    assert (response.status_code, response.json()["error"]) == (400, "expired_token")
    page = devices.browser().enter_code(grant["user_code"])
    assert page.status_code == 400
    assert "expired" in page.text


def test_a_code_approved_but_not_redeemed_in_time_expires(signin: SignIn, devices: Devices) -> None:
    client = devices.client()
    grant = client.authorize()
    devices.browser().approve_code(grant["user_code"])
    expire(signin, grant["user_code"])
    assert client.poll(grant["device_code"]).json()["error"] == "expired_token"


def test_unknown_device_codes_and_other_clients_get_invalid_grant(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    unknown = client.poll("not-a-device-code")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")
    grant = client.authorize(client_id="some-cli")
    other = client.poll(grant["device_code"], client_id="another-cli")
    assert other.json()["error"] == "invalid_grant"
    assert client.poll(grant["device_code"], client_id="some-cli").json()["error"] == (
        "authorization_pending"
    )


def test_device_authorization_accepts_an_empty_body_and_unknown_parameters(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    client.discover()
    endpoint = client.metadata["device_authorization_endpoint"]
    empty = httpx2.post(endpoint, content=b"")
    assert empty.status_code == 200, empty.text
    form = httpx2.post(endpoint, headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 200
    extra = client.authorize(
        surface="claude_code", client_id="x", scope="openid whatever", future_param="1"
    )
    assert extra["user_code"]
    json_body = httpx2.post(endpoint, json={"surface": "claude_code", "new": True})
    assert json_body.status_code == 200
    # and the poll ignores what it does not know either
    pending = client.poll(extra["device_code"], client_id="x", another_new_param="y")
    assert pending.json()["error"] == "authorization_pending"


def test_user_codes_are_eight_letters_from_the_base_20_alphabet_and_distinct(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    codes = {client.authorize()["user_code"] for _ in range(10)}
    assert len(codes) == 10
    for code in codes:
        assert len(code) == 9
        assert code[4] == "-"
        assert set(code.replace("-", "")) <= set("BCDFGHJKLMNPQRSTVWXZ")


def test_refresh_rotates_and_the_spent_refresh_token_is_refused(
    signin: SignIn, devices: Devices
) -> None:
    client, tokens = devices.signed_in()
    refreshed = client.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert renewed["access_token"] != tokens["access_token"]
    assert stream_message(signin, renewed["access_token"]).status_code == 200
    reused = client.refresh(tokens["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (401, "invalid_grant")


def test_refresh_with_the_client_id_it_was_issued_to_works_and_another_is_refused(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    grant = client.authorize(client_id="my-cli")
    devices.browser().approve_code(grant["user_code"])
    tokens = client.poll(grant["device_code"], client_id="my-cli").json()
    wrong = client.refresh(tokens["refresh_token"], client_id="someone-else")
    assert wrong.json()["error"] == "invalid_grant"
    right = client.refresh(tokens["refresh_token"], client_id="my-cli")
    assert right.status_code == 200, right.text


def test_refresh_after_the_user_is_disabled_is_refused_with_401_invalid_grant(
    signin: SignIn, devices: Devices
) -> None:
    client, tokens = devices.signed_in()
    signin.gatepass.store(
        lambda s: identity_ops.set_user_disabled(s, email="alice@corp.example", disabled=True)
    )
    refused = client.refresh(tokens["refresh_token"])
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_grant"


def test_a_user_disabled_before_the_first_poll_gets_no_tokens(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    grant = client.authorize()
    devices.browser().approve_code(grant["user_code"])
    signin.gatepass.store(
        lambda s: identity_ops.set_user_disabled(s, email="alice@corp.example", disabled=True)
    )
    assert client.poll(grant["device_code"]).json()["error"] == "invalid_grant"


def test_bob_is_mapped_to_the_sales_key(signin: SignIn, devices: Devices) -> None:
    _, tokens = devices.signed_in(login="bob@corp.example", password="bob-password")
    assert tokens["email"] == "bob@corp.example"
    assert stream_message(signin, tokens["access_token"]).status_code == 400  # no sonnet
    haiku = {**STREAM, "model": "claude-haiku-4-5"}
    assert stream_message(signin, tokens["access_token"], haiku).status_code == 200
    assert signin.gatepass.wait_for_logs(1)[-1].key_name == "sales-key"


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_sign_out_revokes_and_the_bearer_then_gets_401_without_retry(
    signin: SignIn, which: str, devices: Devices
) -> None:
    client, tokens = devices.signed_in()
    assert stream_message(signin, tokens["access_token"]).status_code == 200
    extra = {"token_type_hint": "refresh_token"} if which == "refresh_token" else {}
    revoked = client.revoke(tokens[which], **extra)
    assert revoked.status_code == 200
    check_epoch(signin)
    response = stream_message(signin, tokens["access_token"])
    assert response.status_code == 401
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["type"] == "authentication_error"
    assert client.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_fallback_paths_under_the_base_url_serve_the_flow(signin: SignIn) -> None:
    base = signin.gatepass.base
    grant = httpx2.post(base + "/oauth/device_authorization", data={"surface": "claude_code"})
    assert grant.status_code == 200
    device_code = grant.json()["device_code"]
    polled = httpx2.post(
        base + "/oauth/token", data={"grant_type": DEVICE_GRANT, "device_code": device_code}
    )
    assert polled.json()["error"] == "authorization_pending"
    assert httpx2.post(base + "/oauth/revoke", data={"token": "unknown"}).status_code == 200


def test_concurrent_polls_of_an_approved_code_yield_tokens_exactly_once(
    devices: Devices,
) -> None:
    client = devices.client()
    grant = client.authorize()
    devices.browser().approve_code(grant["user_code"])
    start = threading.Barrier(6)

    def poll() -> int:
        with httpx2.Client(timeout=15) as http:
            start.wait(10)
            data = {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"]}
            return http.post(client.metadata["token_endpoint"], data=data).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(lambda _: poll(), range(6)))
    assert statuses == [200, 400, 400, 400, 400, 400]


def test_purge_forgets_dead_requests_but_keeps_redeemed_ones_for_refresh(
    signin: SignIn, devices: Devices
) -> None:
    client, tokens = devices.signed_in()
    abandoned = client.authorize()
    support.edit_request(signin, abandoned["user_code"], expires_at=utcnow() - timedelta(days=2))
    gateway = signin.gatepass.gateway
    assert gateway.loop is not None
    asyncio.run_coroutine_threadsafe(gateway.oauth.purge(), gateway.loop).result(5)

    async def statuses(session: AsyncSession) -> list[str]:
        return [row.status for row in (await session.exec(select(DeviceAuthorization))).all()]

    assert signin.gatepass.store(statuses) == ["consumed"]
    assert client.refresh(tokens["refresh_token"]).status_code == 200
