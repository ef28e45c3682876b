"""Reading usage from SSE without re-serialising: chunking, CRLF, boundaries."""

from __future__ import annotations

import pytest

from gatepass.proxy.usage import SseUsageTap, usage_from_message

START = b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1,"cache_creation_input_tokens":4,"cache_read_input_tokens":2}}}\n\n'
DELTA = b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":30}}\n\n'
TEXT = b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"usage: {\\"output_tokens\\": 999}"}}\n\n'


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_usage_is_read_whatever_the_chunking(size: int) -> None:
    stream = START + TEXT + DELTA
    tap = SseUsageTap()
    for i in range(0, len(stream), size):
        tap.feed(stream[i : i + size])
    usage = tap.usage
    assert (usage.input_tokens, usage.output_tokens) == (12, 30)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (4, 2)
    assert tap.at_boundary


def test_crlf_line_endings_are_understood() -> None:
    tap = SseUsageTap()
    tap.feed((START + DELTA).replace(b"\n", b"\r\n"))
    assert tap.usage.output_tokens == 30


def test_boundary_is_false_inside_an_event() -> None:
    tap = SseUsageTap()
    tap.feed(START)
    assert tap.at_boundary
    tap.feed(b"event: content_block_delta\n")
    assert not tap.at_boundary
    tap.feed(b'data: {"x":1}')
    assert not tap.at_boundary
    tap.feed(b"\n\n")
    assert tap.at_boundary


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1,2]",
        b'{"usage": "lots"}',
        b'{"usage": {"output_tokens": -5}}',
        b'{"usage": {"output_tokens": true}}',
        b'{"usage": {"output_tokens": "9"}}',
    ],
)
def test_malformed_usage_is_ignored_not_fatal(data: bytes) -> None:
    tap = SseUsageTap()
    tap.feed(b"event: message_delta\ndata: " + data + b"\n\n")
    assert tap.usage.output_tokens == 0


def test_message_usage_is_read_from_a_json_answer() -> None:
    usage = usage_from_message(b'{"type":"message","usage":{"input_tokens":5,"output_tokens":6}}')
    assert (usage.input_tokens, usage.output_tokens) == (5, 6)
    assert usage_from_message(b"garbage").input_tokens == 0
