"""Turning captured bodies into searchable text, with credentials redacted."""

from __future__ import annotations

import json

from gatepass.logs.capture import redact, request_text, response_text


def test_request_text_keeps_system_and_message_text_only() -> None:
    body = {
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
            {"role": "user", "content": [
                {"type": "image", "source": {"data": "AAAA"}},
                {"type": "tool_result", "content": [{"type": "text", "text": "42"}]},
            ]},
        ],
    }  # fmt: skip
    assert request_text(json.dumps(body).encode(), 1000) == "be brief\nhello\nhi\n42"


def test_response_text_reads_json_and_sse() -> None:
    as_json = json.dumps({"content": [{"type": "text", "text": "plain answer"}]}).encode()
    sse = [
        b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":'
        b'{"type":"text_delta","text":"str"}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":'
        b'{"type":"text_delta","text":"eamed"}}\n\nevent: ping\ndata: {}\n\n',
    ]
    assert response_text([as_json], 1000) == "plain answer"
    assert response_text(sse, 1000) == "streamed"


def test_credentials_in_text_are_redacted() -> None:
    text = (
        "keys: sk-ant-api03-abcdefghijklmnop gp-abcdefghijklmnopqrstuvwxyz012345 "
        "Authorization: Bearer abcdefghijklmnopqrstuvwx password=hunter2 fine words"
    )
    redacted = redact(text)
    for secret in ("sk-ant-api03", "gp-abcdef", "abcdefghijklmnopqrstuvwx", "hunter2"):
        assert secret not in redacted
    assert redacted.endswith("fine words")


def test_malformed_bodies_give_empty_text_and_limits_cut() -> None:
    assert request_text(b"{not json", 100) == ""
    assert response_text([b"{broken"], 100) == ""
    long = json.dumps({"messages": [{"role": "user", "content": "x" * 500}]}).encode()
    assert len(request_text(long, 100)) == 100
