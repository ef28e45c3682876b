"""Token usage read from upstream responses without re-serialising them.

For streams, `SseUsageTap` watches the bytes go by: it splits lines across chunk boundaries,
remembers the current `event:` name and parses only the `data:` of `message_start` and
`message_delta`, the two events that carry usage. It also knows whether the relay is at an
event boundary, which is the only place a gateway `ping` may be slipped in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

USAGE_EVENTS = (b"message_start", b"message_delta")
PING_EVENT = b'event: ping\ndata: {"type": "ping"}\n\n'


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def update(self, usage: Any) -> None:
        """Take the counts present in an Anthropic `usage` object (later values win)."""
        if not isinstance(usage, dict):
            return
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ):
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(self, name, value)


def usage_from_message(body: bytes) -> Usage:
    """Usage of a non-streamed Messages response (or zeros when it has none)."""
    usage = Usage()
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return usage
    if isinstance(message, dict):
        usage.update(message.get("usage"))
    return usage


class SseUsageTap:
    """Incremental SSE reader that extracts usage; feed it every relayed chunk in order."""

    __slots__ = ("_event", "_partial", "at_boundary", "saw_message_stop", "usage")

    def __init__(self) -> None:
        self.usage = Usage()
        self._partial = b""
        self._event = b""
        self.at_boundary = True
        self.saw_message_stop = False

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk if self._partial else chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                self._event = b""
                self.at_boundary = True
                continue
            self.at_boundary = False
            if line.startswith(b"event:"):
                self._event = line[6:].strip()
                if self._event == b"message_stop":
                    self.saw_message_stop = True
            elif line.startswith(b"data:") and self._event in USAGE_EVENTS:
                self._read_data(line[5:])
        if self._partial:
            self.at_boundary = False

    def _read_data(self, payload: bytes) -> None:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        if self._event == b"message_start":
            message = event.get("message")
            if isinstance(message, dict):
                self.usage.update(message.get("usage"))
        else:
            self.usage.update(event.get("usage"))
