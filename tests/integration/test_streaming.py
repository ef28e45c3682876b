"""SSE relay: byte-faithful, unbuffered, pinged when quiet, cancelled when the client leaves."""

from __future__ import annotations

import math
import socket

import httpx2

from gatepass.devtools.fake_upstream import StreamScript, sse
from tests.conftest import GatepassFactory, Harness

BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 8,
    "stream": True,
    "messages": [{"role": "user", "content": "x"}],
}


def message_start(input_tokens: int = 11) -> str:
    return sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5",
                "content": [],
                "stop_reason": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 3,
                },
            },
        },
    )


def delta(text: str) -> str:
    return sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
    )


def message_delta(output_tokens: int) -> str:
    return sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": output_tokens},
        },
    )


STOP = sse("message_stop", {"type": "message_stop"})


def stream_raw(harness: Harness, key: str) -> tuple[httpx2.Response, bytes]:
    with httpx2.stream(
        "POST", harness.base + "/v1/messages", headers={"x-api-key": key}, json=BODY, timeout=30
    ) as response:
        return response, response.read()


def test_stream_is_relayed_byte_for_byte_including_unknown_events(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    chunks = [
        message_start(),
        'event: brand_new_event\ndata: {"type": "brand_new_event", "x": [1,2]}\n\n',
        ": a comment line\n\n",
        delta("Hel"),
        delta("lo \u00fc\U0001f600"),
        message_delta(7),
        STOP,
    ]
    gatepass.fake.script(StreamScript([(0.0, chunk) for chunk in chunks]))
    response, body = stream_raw(gatepass, key)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert body == "".join(chunks).encode()
    row = gatepass.wait_for_logs(1)[0]
    assert (row.input_tokens, row.output_tokens, row.cache_read_input_tokens) == (11, 7, 3)
    assert row.stream is True
    assert row.ttfb_ms is not None


def test_events_split_across_chunks_are_still_counted(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    whole = message_start(21) + delta("a") + message_delta(9) + STOP
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    gatepass.fake.script(StreamScript([(0.0, piece) for piece in pieces]))
    _, body = stream_raw(gatepass, key)
    assert body == whole.encode()
    row = gatepass.wait_for_logs(1)[0]
    assert (row.input_tokens, row.output_tokens) == (21, 9)


def test_mid_stream_error_events_pass_through(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    error = sse(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    gatepass.fake.script(StreamScript([(0.0, message_start()), (0.0, delta("a")), (0.0, error)]))
    _, body = stream_raw(gatepass, key)
    assert body.endswith(error.encode())


def test_gateway_pings_when_the_upstream_is_silent(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(ping_interval=0.05)
    key = harness.create_key("all")
    harness.fake.script(
        StreamScript(
            [(0.0, message_start()), (0.5, delta("late")), (0.0, message_delta(2)), (0.0, STOP)]
        )
    )
    _, body = stream_raw(harness, key)
    text = body.decode()
    assert 'event: ping\ndata: {"type": "ping"}\n\n' in text
    assert text.index("event: ping") > text.index("message_start")
    assert text.index("event: ping") < text.index("late")
    assert text.endswith(STOP)


def test_no_ping_is_injected_inside_a_partial_event(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(ping_interval=0.05)
    key = harness.create_key("all")
    event = delta("half")
    harness.fake.script(
        StreamScript([(0.0, message_start()), (0.0, event[:10]), (0.4, event[10:]), (0.0, STOP)])
    )
    _, body = stream_raw(harness, key)
    assert event.encode() in body


def test_client_disconnect_closes_upstream_and_records_usage(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    gatepass.fake.script(
        StreamScript([(0.0, message_start(42)), (0.0, delta("a")), (math.inf, "never")])
    )
    with httpx2.stream(
        "POST", gatepass.base + "/v1/messages", headers={"x-api-key": key}, json=BODY, timeout=30
    ) as response:
        for chunk in response.iter_bytes():
            if b"content_block_delta" in chunk:
                break
    assert gatepass.fake.wait_for_disconnect(timeout=10)
    row = gatepass.wait_for_logs(1)[0]
    assert row.client_disconnected is True
    assert row.input_tokens == 42
    assert row.error_type == "client_disconnected"


def test_upstream_dying_mid_stream_ends_with_an_error_event(gatepass: Harness) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    import threading

    def broken_upstream() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        data = message_start().encode()
        conn.sendall(head + f"{len(data):x}\r\n".encode() + data + b"\r\n")
        conn.close()

    thread = threading.Thread(target=broken_upstream, daemon=True)
    thread.start()
    from gatepass import manage

    gatepass.store(
        lambda s: manage.add_provider(
            s,
            gatepass.keyring,
            name="fake",
            kind="anthropic",
            base_url=f"http://127.0.0.1:{port}",
            api_key="k",
        )
    )
    gatepass.refresh_catalog()
    key = gatepass.create_key("all")
    _, body = stream_raw(gatepass, key)
    thread.join(5)
    listener.close()
    text = body.decode()
    assert text.startswith("event: message_start")
    assert text.rstrip().splitlines()[-2] == "event: error"
    row = gatepass.wait_for_logs(1)[0]
    assert row.error_type == "api_error"
    assert row.input_tokens == 11


def test_a_dripping_upstream_hits_the_deadline_and_ends_with_an_error_event(
    gatepass: Harness,
) -> None:
    from gatepass import manage

    gatepass.store(
        lambda s: manage.add_provider(
            s,
            gatepass.keyring,
            name="fake",
            kind="anthropic",
            base_url=gatepass.upstream.url,
            api_key="sk-ant-upstream-test-key-0123456789",
            timeout=0.5,
        )
    )
    gatepass.refresh_catalog()
    key = gatepass.create_key("all")
    drip = [(0.0, message_start())] + [(0.05, delta("."))] * 100 + [(math.inf, "never")]
    gatepass.fake.script(StreamScript(drip))
    _, body = stream_raw(gatepass, key)
    text = body.decode()
    assert text.startswith("event: message_start")
    assert text.rstrip().splitlines()[-2] == "event: error"
    assert '"timeout_error"' in text.rstrip().splitlines()[-1]
    row = gatepass.wait_for_logs(1)[0]
    assert row.error_type == "timeout_error"
