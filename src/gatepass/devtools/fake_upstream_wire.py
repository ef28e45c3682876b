"""Anthropic Messages API wire shapes for the fake upstream, precomputed where possible."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

BASE62 = string.digits + string.ascii_letters
ORGANIZATION_ID = "5f1b2c3d-0000-4000-8000-fa4e0a11d0c5"
BASE_TEXT = (" Hello", " from", " the", " fake", " upstream.")
JSON_BAD = "There was an error parsing the body of your request as JSON."


_TO_BASE62 = bytes(ord(BASE62[i % 62]) for i in range(256))  # slightly biased; fine for a fake


def random_id(prefix: str, length: int = 24) -> str:
    """`prefix` plus `length` random base62 characters, like Anthropic's ids."""
    return prefix + random.randbytes(length).translate(_TO_BASE62).decode("ascii")


def frame(event: str, data: Any) -> bytes:
    """One SSE frame: `event: NAME\\ndata: {json}\\n\\n`."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def ratelimit_headers(now: datetime | None = None) -> dict[str, str]:
    """Plausible `anthropic-ratelimit-*` headers (fixed per fake instance)."""
    now = now or datetime.now(UTC)
    reset = (now + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"anthropic-organization-id": ORGANIZATION_ID}
    for kind, limit in (
        ("requests", 4000),
        ("input-tokens", 2_000_000),
        ("output-tokens", 400_000),
        ("tokens", 2_400_000),
    ):
        headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{kind}-remaining"] = str(limit - 1)
        headers[f"anthropic-ratelimit-{kind}-reset"] = reset
    return headers


def missing_field(payload: Any, fields: tuple[str, ...]) -> str | None:
    """Anthropic's 400 message for a body that isn't an object or lacks a required field."""
    if not isinstance(payload, dict):
        return "Input should be a valid dictionary"
    for name in fields:
        if name not in payload:
            return f"{name}: Field required"
    if "max_tokens" in fields and (
        not isinstance(payload["max_tokens"], int) or isinstance(payload["max_tokens"], bool)
    ):
        return "max_tokens: Input should be a valid integer"
    if not isinstance(payload.get("messages"), list):
        return "messages: Input should be a valid list"
    if not isinstance(payload.get("model"), str):
        return "model: Input should be a valid string"
    return None


def cached_prefix(payload: dict[str, Any]) -> bytes | None:
    """The system blocks up to the last one with `cache_control`, serialised; None if none."""
    system = payload.get("system")
    if not isinstance(system, list):
        return None
    last = -1
    for i, block in enumerate(system):
        if isinstance(block, dict) and block.get("cache_control"):
            last = i
    return orjson.dumps([payload.get("model"), system[: last + 1]]) if last >= 0 else None


@dataclass(frozen=True, slots=True)
class Model:
    """One entry of the models catalogue."""

    id: str
    display_name: str
    created_at: str
    line: str
    max_tokens: int

    def to_json(self) -> dict[str, Any]:
        """The `GET /v1/models` item shape."""
        return {
            "type": "model",
            "id": self.id,
            "display_name": self.display_name,
            "created_at": self.created_at,
            "lifecycle": "active",
            "line": self.line,
            "max_input_tokens": 200_000,
            "max_tokens": self.max_tokens,
            "deprecated_at": None,
            "retires_at": None,
        }


MODELS: tuple[Model, ...] = (  # newest first, as the real API lists them
    Model("claude-opus-4-7", "Claude Opus 4.7", "2026-04-16T00:00:00Z", "opus", 128_000),
    Model("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z", "sonnet", 64_000),
    Model("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05T00:00:00Z", "opus", 128_000),
    Model("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-01T00:00:00Z", "haiku", 64_000),
    Model("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z", "sonnet", 64_000),
    Model("claude-opus-4-1", "Claude Opus 4.1", "2025-08-05T00:00:00Z", "opus", 32_000),
)
MODELS_BY_ID = {m.id: orjson.dumps(m.to_json()) for m in MODELS}
MODEL_IDS = [m.id for m in MODELS]
MODEL_ITEMS = [m.to_json() for m in MODELS]


def models_page(limit: int, after_id: str | None, before_id: str | None) -> dict[str, Any]:
    """One page of the catalogue, paginated like the real API (raises ValueError on bad ids)."""
    if after_id is not None:
        start = MODEL_IDS.index(after_id) + 1
        end = min(start + limit, len(MODEL_IDS))
        has_more = end < len(MODEL_IDS)
    elif before_id is not None:
        end = MODEL_IDS.index(before_id)
        start = max(0, end - limit)
        has_more = start > 0
    else:
        start, end = 0, min(limit, len(MODEL_IDS))
        has_more = end < len(MODEL_IDS)
    data = MODEL_ITEMS[start:end]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


class MessageMaker:
    """Builds message bodies and SSE streams with everything request-independent precomputed.

    The text is `deltas` pieces of "Hello from the fake upstream." (cycled), so
    `output_tokens == deltas` and the stream's deltas concatenate to the non-stream text.
    """

    def __init__(self, deltas: int, token_delay: float) -> None:
        pieces = [BASE_TEXT[i % len(BASE_TEXT)] for i in range(deltas)]
        if pieces:
            pieces[0] = pieces[0].lstrip()
        self.text = "".join(pieces)
        self.output_tokens = deltas
        self.token_delay = token_delay
        self.seen_prefixes: set[bytes] = set()
        head = [
            frame(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            frame("ping", {"type": "ping"}),
        ]
        deltas_frames = [
            frame(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
            )
            for p in pieces
        ]
        tail = [
            frame("content_block_stop", {"type": "content_block_stop", "index": 0}),
            frame(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": deltas},
                },
            ),
            frame("message_stop", {"type": "message_stop"}),
        ]
        self._after_start: list[tuple[float, bytes]] = (
            [(0.0, f) for f in head]
            + [(token_delay, f) for f in deltas_frames]
            + [(0.0, f) for f in tail]
        )

    def reset(self) -> None:
        """Forget which prompt prefixes were cached."""
        self.seen_prefixes.clear()

    def usage(self, body: bytes, payload: dict[str, Any]) -> dict[str, Any]:
        """Deterministic usage for a request.

        Input tokens are `max(1, len(body) // 4)`. When `system` has blocks with
        `cache_control`, the prefix up to the last such block (per model) counts
        `max(1, len(prefix_json) // 4)` cache tokens: cache *creation* the first time this
        fake sees that prefix, cache *read* afterwards; those tokens are taken out of
        `input_tokens` (floor 1), as the real API reports them separately.
        """
        total = max(1, len(body) // 4)
        created = read = 0
        prefix = cached_prefix(payload)
        if prefix is not None:
            cached = max(1, len(prefix) // 4)
            if prefix in self.seen_prefixes:
                read = cached
            else:
                self.seen_prefixes.add(prefix)
                created = cached
            total = max(1, total - cached)
        return {
            "input_tokens": total,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": created,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": self.output_tokens,
            "service_tier": "standard",
        }

    def message(self, model: Any, usage: dict[str, Any]) -> bytes:
        """A complete non-stream message body."""
        return orjson.dumps(
            {
                "id": random_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": self.text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            }
        )

    def stream(self, model: Any, usage: dict[str, Any]) -> list[tuple[float, bytes]]:
        """The SSE frames of a streamed message, each with the delay to wait before it."""
        start_usage = dict(usage, output_tokens=1)
        start = frame(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": random_id("msg_"),
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        )
        return [(0.0, start), *self._after_start]
