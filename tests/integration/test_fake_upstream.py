"""The fake Anthropic upstream speaks the Messages API wire format and can be scripted."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from gatepass.devtools.fake_upstream import (
    FakeUpstream,
    Scripted,
    StreamScript,
    build_server,
    sse,
)
from gatepass.devtools.fake_upstream_types import script_from_json
from gatepass.devtools.server import serve_in_thread

KEY = "sk-ant-fake"
MODEL = "claude-haiku-4-5"  # not on the SDK's deprecation list, which would warn
AUTH = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
HELLO = "Hello from the fake upstream."
BODY: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}
FRAME = re.compile(r"event: ([a-z_]+)\ndata: (\{.*\})\Z")


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream(api_key=KEY)
    with serve_in_thread(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeUpstream, str]) -> FakeUpstream:
    served[0].reset()
    return served[0]


@pytest.fixture
def url(served: tuple[FakeUpstream, str], fake: FakeUpstream) -> str:
    return served[1]


@pytest.fixture
def client(url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=url, headers=AUTH) as raw:
        yield raw


def frames(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Split an SSE body into (event, data) pairs, asserting Anthropic's exact framing."""
    assert text.endswith("\n\n")
    parsed = []
    for block in text[:-2].split("\n\n"):
        match = FRAME.match(block)
        assert match, f"badly framed SSE block: {block!r}"
        parsed.append((match[1], orjson.loads(match[2])))
    return parsed


def message_start(model: str = MODEL) -> str:
    usage = {"input_tokens": 3, "output_tokens": 1}
    message: dict[str, Any] = {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return sse("message_start", {"type": "message_start", "message": message})


def text_events(text: str) -> list[str]:
    return [
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]


def message_end(output_tokens: int = 1) -> list[str]:
    delta = {"stop_reason": "end_turn", "stop_sequence": None}
    return [
        sse(
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}},
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]


def test_sdk_create_gets_a_complete_message_echoing_the_model(
    client: anthropic.Anthropic, fake: FakeUpstream
) -> None:
    message = client.messages.create(**BODY)

    assert re.fullmatch(r"msg_[0-9A-Za-z]{24}", message.id)
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert [(b.type, b.text) for b in message.content if b.type == "text"] == [("text", HELLO)]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens == max(1, len(fake.requests[-1].body) // 4)
    assert message.usage.output_tokens == 5
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.service_tier == "standard"


def test_sdk_stream_collects_the_same_text_and_final_usage(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**BODY) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == HELLO
    assert final.content[0].type == "text"
    assert final.content[0].text == HELLO
    assert final.usage.output_tokens == 5
    assert final.usage.input_tokens >= 1
    assert final.stop_reason == "end_turn"


def test_raw_stream_sends_anthropic_events_in_order_with_exact_framing(
    http: httpx2.Client,
) -> None:
    response = http.post("/v1/messages?beta=true", json={**BODY, "stream": True})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["request-id"].startswith("req_")
    events = frames(response.text)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["model"] == MODEL
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["usage"]["output_tokens"] == 1
    assert start["usage"]["input_tokens"] >= 1
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == HELLO
    assert all(d["delta"]["type"] == "text_delta" for n, d in events if n == "content_block_delta")
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"] == {"output_tokens": 5}


def test_the_number_of_deltas_sets_the_text_and_output_tokens() -> None:
    fake = FakeUpstream(deltas=12)
    with serve_in_thread(fake.app) as url, httpx2.Client(base_url=url) as http:
        streamed = frames(http.post("/v1/messages", json={**BODY, "stream": True}).text)
        whole = http.post("/v1/messages", json=BODY).json()

    deltas = [d["delta"]["text"] for n, d in streamed if n == "content_block_delta"]
    assert len(deltas) == 12
    assert "".join(deltas) == whole["content"][0]["text"]
    assert whole["content"][0]["text"].startswith(HELLO + " Hello")
    assert whole["usage"]["output_tokens"] == 12
    assert streamed[-2][1]["usage"]["output_tokens"] == 12


def test_requests_are_recorded_with_query_headers_and_body_as_received(
    http: httpx2.Client, fake: FakeUpstream
) -> None:
    headers = [("X-Dup", "one"), ("x-dup", "two"), ("Anthropic-Beta", "b1,b2")]
    http.post("/v1/messages?beta=true", json=BODY, headers=headers)

    [request] = fake.requests
    assert (request.method, request.path, request.query) == ("POST", "/v1/messages", "beta=true")
    assert ("x-dup", "one") in request.headers
    assert ("x-dup", "two") in request.headers
    assert all(name == name.lower() for name, _ in request.headers)
    assert request.header("X-DUP") == "one"
    assert request.header_values("x-dup") == ["one", "two"]
    assert request.header("anthropic-beta") == "b1,b2"
    assert request.header("x-absent") is None
    assert request.json() == BODY
    assert request.header("content-length") == str(len(request.body))
    assert fake.request_count == 1


def test_a_wrong_key_is_rejected_with_an_authentication_error_and_still_recorded(
    url: str, fake: FakeUpstream
) -> None:
    with (
        anthropic.Anthropic(base_url=url, api_key="sk-ant-wrong", max_retries=0) as wrong,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        wrong.messages.create(**BODY)

    assert caught.value.status_code == 401
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert body["request_id"] == caught.value.response.headers["request-id"]
    assert fake.requests[-1].header("authorization") == "Bearer sk-ant-wrong"


def test_a_request_without_any_key_is_rejected(url: str) -> None:
    response = httpx2.post(f"{url}/v1/messages", json=BODY)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    "headers",
    [{"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}],
    ids=["x-api-key", "bearer"],
)
def test_the_key_is_accepted_as_x_api_key_or_bearer(url: str, headers: dict[str, str]) -> None:
    assert httpx2.post(f"{url}/v1/messages", json=BODY, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "There was an error parsing the body of your request as JSON."),
        (b"", "There was an error parsing the body of your request as JSON."),
        (b"[1, 2]", "Input should be a valid dictionary"),
        (orjson.dumps({k: v for k, v in BODY.items() if k != "model"}), "model: Field required"),
        (
            orjson.dumps({k: v for k, v in BODY.items() if k != "max_tokens"}),
            "max_tokens: Field required",
        ),
        (
            orjson.dumps({k: v for k, v in BODY.items() if k != "messages"}),
            "messages: Field required",
        ),
    ],
    ids=["bad-json", "empty", "not-object", "no-model", "no-max-tokens", "no-messages"],
)
def test_malformed_message_requests_get_anthropics_invalid_request_error(
    http: httpx2.Client, content: bytes, message: str
) -> None:
    response = http.post(
        "/v1/messages", content=content, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": response.headers["request-id"],
    }


def test_message_answers_carry_request_id_and_ratelimit_headers(http: httpx2.Client) -> None:
    response = http.post("/v1/messages", json=BODY)

    assert re.fullmatch(r"req_[0-9A-Za-z]{24}", response.headers["request-id"])
    assert response.headers["content-type"] == "application/json"
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        for part in ("limit", "remaining", "reset"):
            assert response.headers[f"anthropic-ratelimit-{kind}-{part}"]
    assert response.headers["anthropic-organization-id"]


def test_a_scripted_429_surfaces_as_the_sdks_rate_limit_error_once(
    client: anthropic.Anthropic, fake: FakeUpstream
) -> None:
    fake.script(Scripted.error(429, "slow down", headers={"retry-after": "7"}))

    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(**BODY)

    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.headers["request-id"].startswith("req_")
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }
    assert client.messages.create(**BODY).content[0].type == "text"


def test_scripted_answers_are_used_first_in_first_out_by_any_post(
    client: anthropic.Anthropic, http: httpx2.Client, fake: FakeUpstream
) -> None:
    canned = {"input_tokens": 4242}
    fake.script(
        Scripted.error(529, "busy"),
        Scripted(200, canned, headers={"x-canned": "yes"}),
        Scripted(502, "<html>bad gateway</html>", headers={"content-type": "text/html"}),
    )

    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(**BODY)
    counted = http.post("/v1/messages/count_tokens", json=BODY)
    html = http.post("/v1/messages", json=BODY)

    assert (counted.json(), counted.headers["x-canned"]) == (canned, "yes")
    assert counted.headers["content-type"] == "application/json"
    assert (html.status_code, html.text) == (502, "<html>bad gateway</html>")
    assert html.headers["content-type"] == "text/html"
    assert http.post("/v1/messages", json=BODY).status_code == 200


def test_the_sdk_skips_unknown_events_in_a_scripted_stream(
    client: anthropic.Anthropic, fake: FakeUpstream
) -> None:
    future = sse("future_event", {"type": "future_event", "detail": {"x": 1}})
    events = [message_start(), future, *text_events("scripted text"), future, *message_end(2)]
    fake.script(StreamScript([(0.0, chunk) for chunk in events]))

    with client.messages.stream(**BODY) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "scripted text"
    assert final.usage.output_tokens == 2


def test_a_scripted_stream_is_sent_verbatim(http: httpx2.Client, fake: FakeUpstream) -> None:
    chunks = [message_start(), "event: odd\ndata: not json\n\n", ": a comment\n\n"]
    fake.script(StreamScript([(0.0, c) for c in chunks], headers={"x-stream": "1"}))

    response = http.post("/v1/messages", json={**BODY, "stream": True})

    assert response.text == "".join(chunks)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["x-stream"] == "1"


def test_a_mid_stream_error_event_raises_in_the_sdk(
    client: anthropic.Anthropic, fake: FakeUpstream
) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events = [message_start(), *text_events("partial"), sse("error", error)]
    fake.script(StreamScript([(0.0, chunk) for chunk in events]))

    with (
        client.messages.stream(**BODY) as stream,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        "".join(stream.text_stream)

    assert caught.value.body == error


def test_a_client_leaving_a_silent_stream_is_counted_as_a_disconnect(
    http: httpx2.Client, fake: FakeUpstream
) -> None:
    http.post("/v1/messages", json={**BODY, "stream": True})  # completes: not a disconnect
    fake.script(StreamScript([(0.0, message_start()), (math.inf, "never sent")]))

    with http.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as response:
        first = next(response.iter_bytes())

    assert first.startswith(b"event: message_start\n")
    assert fake.wait_for_disconnect(timeout=10)
    assert fake.disconnects == 1


def test_a_client_leaving_a_slow_generated_stream_is_counted_as_a_disconnect() -> None:
    fake = FakeUpstream(token_delay=3600)
    with (
        serve_in_thread(fake.app) as url,
        httpx2.Client(base_url=url) as http,
        http.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as response,
    ):
        assert next(response.iter_bytes()).startswith(b"event: message_start\n")
        response.close()
        assert fake.wait_for_disconnect(timeout=10)
    assert fake.disconnects == 1


def test_wait_for_disconnect_returns_false_when_nobody_leaves(fake: FakeUpstream) -> None:
    assert fake.wait_for_disconnect(timeout=0) is False


def test_latency_and_token_delay_still_give_a_complete_stream() -> None:
    fake = FakeUpstream(latency=0.01, token_delay=0.001)
    with serve_in_thread(fake.app) as url, httpx2.Client(base_url=url) as http:
        events = frames(http.post("/v1/messages", json={**BODY, "stream": True}).text)
    assert events[-1][0] == "message_stop"


def test_count_tokens_answers_input_tokens(client: anthropic.Anthropic, fake: FakeUpstream) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=BODY["messages"])

    assert counted.input_tokens == max(1, len(fake.requests[-1].body) // 4)
    assert fake.requests[-1].path == "/v1/messages/count_tokens"


def test_models_list_pages_like_anthropic(client: anthropic.Anthropic, http: httpx2.Client) -> None:
    ids = [model.id for model in client.models.list(limit=2)]
    page = http.get("/v1/models", params={"limit": 2}).json()
    after = http.get("/v1/models", params={"limit": 2, "after_id": page["last_id"]}).json()

    assert {"claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"} <= set(ids)
    assert len(ids) == len(set(ids)) >= 5
    assert (len(page["data"]), page["has_more"]) == (2, True)
    assert (page["first_id"], page["last_id"]) == (ids[0], ids[1])
    assert after["first_id"] == ids[2]
    for item in page["data"]:
        assert item["type"] == "model"
        assert set(item) >= {"id", "display_name", "created_at"}


def test_a_model_can_be_retrieved_and_an_unknown_one_is_not_found(
    client: anthropic.Anthropic,
) -> None:
    model = client.models.retrieve("claude-sonnet-4-5")

    assert (model.id, model.display_name) == ("claude-sonnet-4-5", "Claude Sonnet 4.5")
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("gpt-nope")


def test_unknown_paths_and_methods_answer_in_anthropics_envelope(http: httpx2.Client) -> None:
    missing = http.get("/v1/nothing")
    wrong_method = http.get("/v1/messages")

    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "not_found_error")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"


def test_cache_control_system_blocks_create_then_read_the_cache(
    client: anthropic.Anthropic,
) -> None:
    system: Any = [
        {"type": "text", "text": "You are terse. " * 40, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Uncached tail."},
    ]
    first = client.messages.create(**BODY, system=system).usage
    second = client.messages.create(**BODY, system=system).usage

    assert (first.cache_creation_input_tokens or 0) > 0
    assert first.cache_read_input_tokens == 0
    assert second.cache_creation_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.input_tokens == first.input_tokens >= 1


def test_control_endpoints_script_list_and_reset_from_another_process(
    http: httpx2.Client, fake: FakeUpstream
) -> None:
    chunks = [message_start(), *message_end()]
    items = [
        Scripted.error(429, "later").to_json(),
        StreamScript([(0.0, chunk) for chunk in chunks]).to_json(),
    ]
    assert http.post("/_fake/script", json=items).json() == {"queued": 2}
    assert http.post("/v1/messages", json=BODY).status_code == 429
    streamed = http.post("/v1/messages", json=BODY, headers={"x-trace": "t1"})
    assert streamed.text == "".join(chunks)

    listed = http.get("/_fake/requests").json()
    assert listed["count"] == 2
    assert [r["path"] for r in listed["requests"]] == ["/v1/messages"] * 2
    assert ["x-trace", "t1"] in listed["requests"][1]["headers"]
    assert orjson.loads(listed["requests"][0]["body"]) == BODY

    assert http.post("/_fake/reset").json() == {"ok": True}
    assert http.get("/_fake/requests").json()["requests"] == []
    assert fake.requests == []
    assert http.post("/_fake/script", json=[{"nope": 1}]).status_code == 400


def test_scripted_items_survive_the_json_round_trip_of_the_control_surface() -> None:
    stream = StreamScript([(0.0, "a"), (math.inf, "b")], status=201, headers={"x": "y"})
    canned = Scripted(418, b"teapot", {"content-type": "text/plain"}, delay=0.5)

    assert script_from_json(orjson.loads(orjson.dumps(stream.to_json()))) == stream
    assert script_from_json(orjson.loads(orjson.dumps(canned.to_json()))) == Scripted(
        418, "teapot", {"content-type": "text/plain"}, delay=0.5
    )


def test_without_recording_only_the_request_count_is_kept() -> None:
    fake = FakeUpstream(record=False)
    with serve_in_thread(fake.app) as url:
        assert httpx2.post(f"{url}/v1/messages", json=BODY).status_code == 200

    assert fake.requests == []
    assert fake.request_count == 1


def test_the_command_line_configures_the_fake_and_its_server() -> None:
    fake, server = build_server(
        ["--port", "9123", "--latency", "0.5", "--deltas", "7", "--api-key", "k", "--no-record"]
    )

    assert (server.config.host, server.config.port) == ("127.0.0.1", 9123)
    assert (fake.latency, fake.api_key, fake.record) == (0.5, "k", False)
    assert server.config.app is fake.app


def test_script_rejects_things_that_are_not_scripted_answers(fake: FakeUpstream) -> None:
    with pytest.raises(TypeError):
        fake.script({"status": 200})  # type: ignore[arg-type]
