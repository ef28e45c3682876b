"""The official SDK sees Gatepass exactly as it sees Anthropic: same methods, same exceptions."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from gatepass.devtools.fake_upstream import Scripted
from tests.conftest import GatepassFactory, Harness

MESSAGE = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def client(harness: Harness, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=harness.base, api_key=key, max_retries=0)


def test_sdk_counts_tokens(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    count = client(gatepass, key).messages.count_tokens(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "hello there"}]
    )
    assert count.input_tokens > 0


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, anthropic.BadRequestError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (413, anthropic.RequestTooLargeError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_upstream_errors_surface_as_the_sdks_typed_exceptions(
    gatepass: Harness, status: int, exception: type[Exception]
) -> None:
    key = gatepass.create_key("all")
    gatepass.fake.script(Scripted.error(status, f"upstream {status}"))
    with pytest.raises(exception) as raised:
        client(gatepass, key).messages.create(model="claude-haiku-4-5", **MESSAGE)
    assert f"upstream {status}" in str(raised.value)


def test_gateway_errors_surface_as_the_sdks_typed_exceptions(
    make_gatepass: GatepassFactory,
) -> None:
    harness = make_gatepass(max_body_bytes=2048)
    key = harness.create_key("haiku", models="claude-haiku-4-5")
    sdk = client(harness, key)
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.create(model="claude-unknown", **MESSAGE)
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.create(model="claude-opus-4-7", **MESSAGE)
    with pytest.raises(anthropic.RequestTooLargeError):
        sdk.messages.create(
            model="claude-haiku-4-5",
            max_tokens=8,
            messages=[{"role": "user", "content": "x" * 5000}],
        )
    harness.revoke_key("haiku")
    with pytest.raises(anthropic.AuthenticationError):
        sdk.messages.create(model="claude-haiku-4-5", **MESSAGE)


def test_sdk_1x_style_requests_pass_through(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    response = httpx2.post(
        gatepass.base + "/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": "claude-haiku-4-5", **MESSAGE},
    )
    assert response.status_code == 200
    assert gatepass.fake.requests[-1].header("anthropic-version") == "2023-06-01"
    sdk2 = client(gatepass, key)
    sdk2.messages.create(model="claude-haiku-4-5", **MESSAGE)
    assert gatepass.fake.requests[-1].header("anthropic-version") != ""


def test_health_and_readiness(gatepass: Harness) -> None:
    assert httpx2.get(gatepass.url + "/healthz").json() == {"status": "ok"}
    assert httpx2.get(gatepass.url + "/readyz").status_code == 200
    gatepass.gateway.ready = False
    assert httpx2.get(gatepass.url + "/readyz").status_code == 503
