"""Anthropic-shaped errors for everything under /anthropic: one renderer, one envelope.

`{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}` with the statuses
of Claude Code's gateway contract, so SDKs raise their usual typed exceptions and Claude Code
reacts as it does to api.anthropic.com (re-login on 401, back-off on 429/529, …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import orjson

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "billing_error",
    "not_supported",
    "api_error",
    "timeout_error",
    "overloaded_error",
]


@dataclass(slots=True)
class GatewayError(Exception):
    """An error Gatepass itself answers with (as opposed to one relayed from upstream)."""

    status: int
    type: ErrorType
    message: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    retry: bool | None = None  # sets x-should-retry when not None

    def render(self, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = orjson.dumps(
            {
                "type": "error",
                "error": {"type": self.type, "message": self.message},
                "request_id": request_id,
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"request-id", request_id.encode()),
            *self.headers,
        ]
        if self.retry is not None:
            headers.append((b"x-should-retry", b"true" if self.retry else b"false"))
        return self.status, headers, body


def authentication(message: str, *, final: bool = False) -> GatewayError:
    """401; `final` tells clients not to retry (revoked or expired credentials)."""
    return GatewayError(401, "authentication_error", message, retry=False if final else None)


def invalid_request(message: str) -> GatewayError:
    return GatewayError(400, "invalid_request_error", message)


def not_found(message: str) -> GatewayError:
    return GatewayError(404, "not_found_error", message)


def not_supported(message: str) -> GatewayError:
    return GatewayError(501, "not_supported", message, retry=False)


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        413, "request_too_large", f"Request exceeds the maximum size of {limit} bytes"
    )
