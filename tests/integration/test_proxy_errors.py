"""Every gateway error is Anthropic-shaped, has the contract's status, and costs no upstream call."""

from __future__ import annotations

import socket
from typing import Any

import anthropic
import httpx2
import pytest

from gatepass.devtools.fake_upstream import Scripted
from tests.conftest import GatepassFactory, Harness

BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "x"}],
}


def post(harness: Harness, key: str | None, body: Any = None, **kwargs: Any) -> httpx2.Response:
    headers = {"anthropic-version": "2023-06-01", **kwargs.pop("headers", {})}
    if key is not None:
        headers["x-api-key"] = key
    if "content" not in kwargs:
        kwargs["json"] = BODY if body is None else body
    return httpx2.post(harness.base + kwargs.pop("path", "/v1/messages"), headers=headers, **kwargs)


def assert_error(response: httpx2.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["request-id"].startswith("req_")
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == kind
    assert payload["error"]["message"]
    assert payload["request_id"] == response.headers["request-id"]
    return payload


def test_missing_key_is_401_and_never_reaches_upstream(gatepass: Harness) -> None:
    response = post(gatepass, None)
    assert_error(response, 401, "authentication_error")
    assert "x-should-retry" not in response.headers
    assert gatepass.fake.requests == []


def test_unknown_key_is_401(gatepass: Harness) -> None:
    gatepass.create_key("real")
    for wrong in ("gp-not-a-real-key", "sk-ant-api03-whatever", "x" * 10_000):
        response = post(gatepass, wrong)
        assert_error(response, 401, "authentication_error")
        assert response.headers["x-should-retry"] == "false"
    assert gatepass.fake.requests == []


def test_revoked_key_is_401_without_retry(gatepass: Harness) -> None:
    key = gatepass.create_key("leaver")
    assert post(gatepass, key).status_code == 200
    gatepass.revoke_key("leaver")
    response = post(gatepass, key)
    payload = assert_error(response, 401, "authentication_error")
    assert response.headers["x-should-retry"] == "false"
    assert "revoked" in payload["error"]["message"]


def test_expired_key_is_401_without_retry(gatepass: Harness) -> None:
    from datetime import UTC, datetime, timedelta

    from gatepass.store import queries

    key = gatepass.create_key("temp", expires="1h")

    async def expire(session: Any) -> None:
        row = await queries.get_key_by_name(session, name="temp")
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)

    gatepass.store(expire)
    gatepass.gateway.keys.invalidate()
    response = post(gatepass, key)
    payload = assert_error(response, 401, "authentication_error")
    assert response.headers["x-should-retry"] == "false"
    assert "expired" in payload["error"]["message"]


def test_sdk_raises_authentication_error_for_a_bad_key(gatepass: Harness) -> None:
    client = anthropic.Anthropic(base_url=gatepass.base, api_key="gp-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(**BODY)


def test_model_off_the_allow_list_is_400_naming_the_model(gatepass: Harness) -> None:
    key = gatepass.create_key("haiku-only", models="claude-haiku-4-5")
    payload = assert_error(post(gatepass, key), 400, "invalid_request_error")
    assert "claude-sonnet-4-6" in payload["error"]["message"]
    assert gatepass.fake.requests == []


def test_sdk_raises_bad_request_for_a_denied_model(gatepass: Harness) -> None:
    key = gatepass.create_key("haiku-only", models="claude-haiku-4-5")
    client = anthropic.Anthropic(base_url=gatepass.base, api_key=key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="claude-sonnet-4-6"):
        client.messages.create(**BODY)


@pytest.mark.parametrize(
    "model",
    [
        "Claude-Sonnet-4-6",
        "CLAUDE-SONNET-4-6",
        " claude-sonnet-4-6",
        "claude-sonnet-4-6 ",
        "claude-sonnet-4-6\n",
        "claude-sonnet-4-6\u200b",
        "\u200bclaude-sonnet-4-6",
        "claude-s\u043ennet-4-6",  # Cyrillic o
        "anthropic/claude-sonnet-4-6",
        "claude-sonnet-4-6@latest",
        "claude-sonnet-4-6-20990101",
        "",
    ],
)
def test_model_look_alikes_are_not_served(gatepass: Harness, model: str) -> None:
    key = gatepass.create_key("sonnet", models="claude-sonnet-4-6")
    response = post(gatepass, key, {**BODY, "model": model})
    assert response.status_code in (400, 404)
    assert response.json()["type"] == "error"
    assert gatepass.fake.requests == []


def test_alias_is_refused_when_its_target_is_not_allowed(gatepass: Harness) -> None:
    key = gatepass.create_key("haiku-only", models="claude-haiku-4-5")
    assert_error(post(gatepass, key, {**BODY, "model": "sonnet"}), 400, "invalid_request_error")
    assert gatepass.fake.requests == []


def test_unknown_model_is_404(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    payload = assert_error(
        post(gatepass, key, {**BODY, "model": "claude-nope-9"}), 404, "not_found_error"
    )
    assert "claude-nope-9" in payload["error"]["message"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'{"max_tokens": 5, "messages": []}', "model: Field required"),
        (b'{"model": 7, "max_tokens": 5}', "model"),
        (b'{"model": "claude-haiku-4-5", "stream": "yes"}', "stream"),
        (b"\xff\xfe\x00", "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400_without_an_upstream_call(
    gatepass: Harness, content: bytes, fragment: str
) -> None:
    key = gatepass.create_key("all")
    response = post(gatepass, key, content=content, headers={"content-type": "application/json"})
    payload = assert_error(response, 400, "invalid_request_error")
    assert fragment in payload["error"]["message"]
    assert gatepass.fake.requests == []


def test_body_over_the_limit_is_413_by_content_length(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(max_body_bytes=1024)
    key = harness.create_key("all")
    big = {**BODY, "messages": [{"role": "user", "content": "x" * 2000}]}
    assert_error(post(harness, key, big), 413, "request_too_large")
    assert harness.fake.requests == []


def test_chunked_body_over_the_limit_is_413(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(max_body_bytes=1024)
    key = harness.create_key("all")

    def chunks() -> Any:
        yield b'{"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}]}'

    response = post(harness, key, content=chunks(), headers={"content-type": "application/json"})
    assert_error(response, 413, "request_too_large")
    assert harness.fake.requests == []


def test_body_just_under_the_limit_passes(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(max_body_bytes=4096)
    key = harness.create_key("all")
    body = {**BODY, "messages": [{"role": "user", "content": "x" * 3000}]}
    assert post(harness, key, body).status_code == 200


def test_unsupported_endpoint_is_501_without_retry(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    for path in ("/v1/messages/batches", "/v1/files", "/v1/complete"):
        response = post(gatepass, key, path=path)
        assert_error(response, 501, "not_supported")
        assert response.headers["x-should-retry"] == "false"


def test_unknown_paths_and_methods_are_answered_cleanly(gatepass: Harness) -> None:
    assert_error(httpx2.get(gatepass.base + "/nothing/here"), 404, "not_found_error")
    assert_error(httpx2.get(gatepass.base + "/v1/messages"), 405, "invalid_request_error")
    head = httpx2.head(gatepass.base + "/")
    assert head.status_code == 200
    assert head.headers["request-id"]
    assert httpx2.head(gatepass.base + "/api/hello").status_code == 200


@pytest.mark.parametrize(
    "path", ["/anthropic/../healthz", "/anthropic/v1/./messages", "/anthropic/%2e%2e/readyz"]
)
def test_dot_segments_are_refused(gatepass: Harness, path: str) -> None:
    with socket.create_connection(("127.0.0.1", int(gatepass.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:100]


def test_unreachable_upstream_is_502(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass()
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{placeholder.getsockname()[1]}"
    from gatepass import manage

    harness.store(
        lambda s: manage.add_provider(
            s, harness.keyring, name="fake", kind="anthropic", base_url=dead, api_key="k"
        )
    )
    harness.refresh_catalog()
    key = harness.create_key("all")
    assert_error(post(harness, key), 502, "api_error")


def test_upstream_that_does_not_answer_in_time_is_504(gatepass: Harness) -> None:
    from gatepass import manage

    gatepass.store(
        lambda s: manage.add_provider(
            s,
            gatepass.keyring,
            name="fake",
            kind="anthropic",
            base_url=gatepass.upstream.url,
            api_key="sk-ant-upstream-test-key-0123456789",
            timeout=0.2,
        )
    )
    gatepass.refresh_catalog()
    gatepass.fake.script(Scripted(200, {"ok": True}, delay=5))
    key = gatepass.create_key("all")
    assert_error(post(gatepass, key), 504, "timeout_error")


def test_upstream_rejecting_the_provider_key_becomes_a_gateway_error(gatepass: Harness) -> None:
    gatepass.fake.script(Scripted.error(401, "invalid x-api-key sk-ant-...secret"))
    key = gatepass.create_key("all")
    response = post(gatepass, key)
    payload = assert_error(response, 502, "api_error")
    assert "x-api-key" not in payload["error"]["message"]


def test_every_gateway_error_carries_a_unique_request_id(gatepass: Harness) -> None:
    ids = {post(gatepass, None).headers["request-id"] for _ in range(5)}
    assert len(ids) == 5
