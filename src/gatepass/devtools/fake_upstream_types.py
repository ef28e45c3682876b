"""Value types of the fake Anthropic upstream: recorded requests and scripted answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"

# The error type Anthropic uses for each status, for `Scripted.error` without an explicit type.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    501: "not_supported",
    504: "timeout_error",
    529: "overloaded_error",
}


def sse(event: str, data: Any) -> str:
    """One SSE frame as Anthropic writes it: `event: NAME\\ndata: {json}\\n\\n`."""
    return f"event: {event}\ndata: {orjson.dumps(data).decode()}\n\n"


def error_envelope(error_type: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    """Anthropic's error body: `{"type":"error","error":{...},"request_id":...}`."""
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake received it (header names lowercased, duplicates kept)."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in arrival order."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form for `GET /_fake/requests` (body decoded as UTF-8, lossy)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [[key, value] for key, value in self.headers],
            "body": self.body.decode("utf-8", "replace"),
        }


@dataclass(frozen=True, slots=True)
class Scripted:
    """A canned non-stream answer.

    A dict body is sent as JSON; str/bytes bodies are sent verbatim. The content type is
    `application/json` unless `headers` names one. `delay` is waited (after the fake's
    `latency`) before the first byte. A `request-id` header is added unless given.
    """

    status: int
    body: dict[str, Any] | bytes | str
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "scripted error",
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> Scripted:
        """An Anthropic error envelope; the type defaults to the one Anthropic uses for `status`."""
        kind = error_type or ERROR_TYPES.get(status, "api_error" if status >= 500 else "error")
        return cls(status, error_envelope(kind, message), dict(headers or {}), delay)

    def render(self) -> bytes:
        """The body bytes as sent."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return orjson.dumps(self.body)

    def to_json(self) -> dict[str, Any]:
        """The form `POST /_fake/script` accepts."""
        body = self.body.decode("utf-8", "replace") if isinstance(self.body, bytes) else self.body
        return {"status": self.status, "body": body, "headers": self.headers, "delay": self.delay}


@dataclass(frozen=True, slots=True)
class StreamScript:
    """A canned SSE answer: each raw chunk is sent `delay` seconds after the previous one.

    Chunks go out verbatim (use `sse()` to frame events), so tests can send unknown event
    types, mid-stream `error` events, partial frames or long silences. A delay of
    `math.inf` never ends: the stream stays open until the client goes away.
    """

    events: list[tuple[float, str]]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The form `POST /_fake/script` accepts (infinite delays as the string "inf")."""
        events = [["inf" if d == float("inf") else d, chunk] for d, chunk in self.events]
        return {"events": events, "status": self.status, "headers": self.headers}


ScriptItem = Scripted | StreamScript


def script_from_json(item: Any) -> ScriptItem:
    """Parse one item of a `POST /_fake/script` list; raises ValueError when malformed."""
    if not isinstance(item, dict):
        raise ValueError("each scripted item must be a JSON object")
    headers = item.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("headers must be an object")
    headers = {str(k): str(v) for k, v in headers.items()}
    try:
        if "events" in item:
            events = [(float(delay), str(chunk)) for delay, chunk in item["events"]]
            return StreamScript(events, int(item.get("status", 200)), headers)
        body = item.get("body", b"")
        if not isinstance(body, dict | str):
            body = orjson.dumps(body)
        return Scripted(int(item["status"]), body, headers, float(item.get("delay", 0.0)))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed scripted item: {exc}") from exc
