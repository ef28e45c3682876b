"""Conversation capture for `logs.capture = "full"`: cheap on the request path, parsed later.

On the request path the proxy only keeps references: the request body it already holds, and
the response chunks as they are sent (a list append per chunk). The log writer, off the
request path, turns them into text: the messages' text blocks, the response's text (from
JSON or from SSE `text_delta`s), with anything that looks like a credential redacted.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson

Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_CAPTURED_BYTES = 4 * 1024 * 1024  # response bytes kept per request
REDACTED = "[REDACTED]"
CREDENTIAL = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|gpa?-[A-Za-z0-9_\-]{20,}|gpcs-[A-Za-z0-9_\-]{20,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{16,}=*"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"
    r"|AKIA[0-9A-Z]{16}|(?i:api[_-]?key|password|secret)\s*[:=]\s*\S+)"
)


class Capture:
    """The response bytes of one request, collected as they are sent."""

    __slots__ = ("chunks", "request", "size")

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.chunks: list[bytes] = []
        self.size = 0

    def wrap(self, send: Send) -> Send:
        async def capturing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and self.size < MAX_CAPTURED_BYTES:
                body = message.get("body", b"")
                self.chunks.append(body)
                self.size += len(body)
            await send(message)

        return capturing


def redact(text: str) -> str:
    return CREDENTIAL.sub(REDACTED, text)


def _blocks_text(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    parts: list[str] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif "content" in block:  # tool_result blocks nest their content
                    parts.extend(_blocks_text(block["content"]))
    return parts


def request_text(body: bytes, limit: int) -> str:
    """The system prompt and every message's text, one per line."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(document, dict):
        return ""
    parts = _blocks_text(document.get("system"))
    for message in document.get("messages") or []:
        if isinstance(message, dict):
            parts.extend(_blocks_text(message.get("content")))
    return redact("\n".join(parts))[:limit]


def response_text(chunks: list[bytes], limit: int) -> str:
    """The assistant's text, from a JSON response or an SSE stream."""
    raw = b"".join(chunks)
    parts: list[str] = []
    if raw.lstrip().startswith(b"{"):
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return ""
        if isinstance(document, dict):
            parts = _blocks_text(document.get("content"))
    else:
        for line in raw.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            try:
                event = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            delta = event.get("delta") if isinstance(event, dict) else None
            if isinstance(delta, dict) and isinstance(delta.get("text"), str):
                parts.append(delta["text"])
    return redact("".join(parts))[:limit]


def bodies_of(
    captured: list[tuple[str, datetime, Capture | None]], limit: int
) -> list[dict[str, Any]]:
    """Rows for `request_body` from what the proxy captured (called by the log writer)."""
    rows = []
    for request_id, created_at, capture in captured:
        if capture is None:
            continue
        rows.append(
            {
                "request_id": request_id,
                "created_at": created_at,
                "request_text": request_text(capture.request, limit),
                "response_text": response_text(capture.chunks, limit),
            }
        )
    return rows
