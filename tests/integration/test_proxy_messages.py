"""The Messages API through Gatepass with a static virtual key, driven by the official SDK."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from tests.conftest import UPSTREAM_KEY, Harness


def sdk(harness: Harness, key: str, **kwargs: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=harness.base, api_key=key, max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_sdk_creates_a_message_through_the_gateway(gatepass: Harness) -> None:
    key = gatepass.create_key("team", models="claude-sonnet-4-6")
    message = sdk(gatepass, key).messages.create(
        model="claude-sonnet-4-6", max_tokens=32, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.usage.output_tokens > 0
    received = gatepass.fake.requests[-1]
    assert received.path == "/v1/messages"
    assert received.header("x-api-key") == UPSTREAM_KEY
    assert received.header("authorization") is None


def test_sdk_streams_a_message_through_the_gateway(gatepass: Harness) -> None:
    key = gatepass.create_key("team")
    with sdk(gatepass, key).messages.stream(
        model="claude-haiku-4-5", max_tokens=32, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.usage.output_tokens > 0
    rows = gatepass.wait_for_logs(1)
    assert rows[0].stream is True
    assert rows[0].output_tokens == final.usage.output_tokens
    assert rows[0].input_tokens == final.usage.input_tokens


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_virtual_key_is_accepted_in_either_header(gatepass: Harness, header: str) -> None:
    key = gatepass.create_key("team")
    value = key if header == "x-api-key" else f"Bearer {key}"
    response = httpx2.post(
        gatepass.base + "/v1/messages",
        headers={header: value, "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-sonnet-4-6",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    assert response.status_code == 200, response.text
