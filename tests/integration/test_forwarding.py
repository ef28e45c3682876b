"""What crosses the gateway: bodies, headers, query strings, and upstream answers unmodified."""

from __future__ import annotations

import json

import httpx2

from gatepass.devtools.fake_upstream import Scripted
from tests.conftest import UPSTREAM_KEY, Harness

BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "x"}],
}


def test_body_reaches_upstream_byte_for_byte_with_unknown_fields(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    raw = (
        b'{"model":"claude-haiku-4-5",  "max_tokens":8,"messages":[{"role":"system","content":"s"},'
        b'{"role":"user","content":"caf\\u00e9 \xf0\x9f\x98\x80"}],"safeguards":{"mode":"auto"},'
        b'"temperature":0.10000000000000001,"metadata":{"user_id":"u"},"api_base":"http://evil"}'
    )
    response = httpx2.post(
        gatepass.base + "/v1/messages",
        headers={"x-api-key": key, "content-type": "application/json"},
        content=raw,
    )
    assert response.status_code == 200, response.text
    assert gatepass.fake.requests[-1].body == raw


def test_alias_routes_rewrite_only_the_model(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    body = {**BODY, "model": "sonnet", "extra": {"nested": [1, 2.5, "ü"]}}
    response = httpx2.post(gatepass.base + "/v1/messages", headers={"x-api-key": key}, json=body)
    assert response.status_code == 200, response.text
    sent = gatepass.fake.requests[-1].json()
    assert sent == {**body, "model": "claude-sonnet-4-6-20260101"}
    rows = gatepass.wait_for_logs(1)
    assert rows[0].model == "claude-sonnet-latest"


def test_anthropic_headers_pass_and_credentials_do_not(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    beta = "claude-code-20250219,interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14"
    response = httpx2.post(
        gatepass.base + "/v1/messages?beta=true",
        headers={
            "authorization": f"Bearer {key}",
            "x-api-key": key,
            "anthropic-version": "2026-10-21",
            "anthropic-beta": beta,
            "anthropic-dangerous-direct-browser-access": "true",
            "x-stainless-lang": "python",
            "x-stainless-timeout": "600",
            "x-app": "cli",
            "user-agent": "claude-cli/2.1.331 (external, cli)",
            "cookie": "session=secret-cookie",
            "proxy-authorization": "Basic c2VjcmV0",
            "x-forwarded-for": "10.0.0.1",
            "x-gatepass-user": "admin@corp.example",
            "X-Gatepass-User": "admin@corp.example",
            "connection": "keep-alive, x-custom-hop",
            "x-custom-hop": "hop",
            "te": "trailers",
        },
        json=BODY,
    )
    assert response.status_code == 200, response.text
    received = gatepass.fake.requests[-1]
    assert received.query == "beta=true"
    assert received.header("anthropic-version") == "2026-10-21"
    assert received.header("anthropic-beta") == beta
    assert received.header("anthropic-dangerous-direct-browser-access") == "true"
    assert received.header("x-stainless-lang") == "python"
    assert received.header("x-stainless-timeout") == "600"
    assert received.header("x-app") == "cli"
    assert received.header("user-agent") == "claude-cli/2.1.331 (external, cli)"
    assert received.header_values("x-api-key") == [UPSTREAM_KEY]
    for name in (
        "authorization",
        "cookie",
        "proxy-authorization",
        "x-forwarded-for",
        "x-gatepass-user",
        "x-custom-hop",
        "te",
    ):
        assert received.header(name) is None, name
    assert key not in json.dumps(received.headers)


def test_upstream_errors_are_returned_unmodified(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    headers = {
        "request-id": "req_upstream_123",
        "retry-after": "17",
        "x-should-retry": "true",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-tokens-reset": "2026-11-25T03:00:00Z",
    }
    for status, kind in (
        (429, "rate_limit_error"),
        (529, "overloaded_error"),
        (400, "invalid_request_error"),
        (500, "api_error"),
    ):
        scripted = Scripted.error(status, f"upstream says {kind}", headers=headers)
        gatepass.fake.script(scripted)
        response = httpx2.post(
            gatepass.base + "/v1/messages", headers={"x-api-key": key}, json=BODY
        )
        assert response.status_code == status
        assert response.content == scripted.render()
        for name, value in headers.items():
            assert response.headers[name] == value


def test_successful_answers_keep_upstream_request_id_and_rate_limit_headers(
    gatepass: Harness,
) -> None:
    key = gatepass.create_key("all")
    response = httpx2.post(gatepass.base + "/v1/messages", headers={"x-api-key": key}, json=BODY)
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    assert any(name.startswith("anthropic-ratelimit-") for name in response.headers)
    rows = gatepass.wait_for_logs(1)
    assert rows[0].upstream_request_id == response.headers["request-id"]


def test_count_tokens_is_proxied_to_the_models_provider(gatepass: Harness) -> None:
    key = gatepass.create_key("haiku", models="claude-haiku-4-5")
    response = httpx2.post(
        gatepass.base + "/v1/messages/count_tokens",
        headers={"x-api-key": key},
        json={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] > 0
    assert gatepass.fake.requests[-1].path == "/v1/messages/count_tokens"
    denied = httpx2.post(
        gatepass.base + "/v1/messages/count_tokens",
        headers={"x-api-key": key},
        json={"model": "claude-opus-4-7", "messages": []},
    )
    assert denied.status_code == 400


def test_each_request_writes_one_log_row_without_secrets(gatepass: Harness) -> None:
    key = gatepass.create_key("logged")
    for _ in range(3):
        httpx2.post(gatepass.base + "/v1/messages", headers={"x-api-key": key}, json=BODY)
    rows = gatepass.wait_for_logs(3)
    assert len(rows) == 3
    assert len({row.request_id for row in rows}) == 3
    for row in rows:
        assert row.key_name == "logged"
        assert row.status == 200
        assert row.model == "claude-haiku-4-5"
        assert row.provider == "fake"
        assert row.input_tokens > 0
        assert row.output_tokens > 0
        assert row.latency_ms is not None
        assert row.latency_ms >= 0
        assert key not in row.model_dump_json()
        assert UPSTREAM_KEY not in row.model_dump_json()
