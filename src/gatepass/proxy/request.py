"""Reading what the gateway needs from a client request: credential, body, model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gatepass.proxy.errors import invalid_request, too_large

Scope = dict[str, Any]


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def credentials(scope: Scope) -> list[str]:
    """Candidate credentials in order: `x-api-key`, then `Authorization: Bearer`.

    Clients such as Claude Code's apiKeyHelper send both headers, so either may hold it.
    """
    found: list[str] = []
    for key, value in scope["headers"]:
        if key == b"x-api-key":
            token = value.decode("latin-1").strip()
        elif key == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                continue
            token = rest.strip()
        else:
            continue
        if token and token not in found:
            found.append(token)
    return found


async def read_body(scope: Scope, receive: Any, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = header(scope, b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(limit)
        except ValueError as exc:
            raise invalid_request("Invalid Content-Length header") from exc
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@dataclass(slots=True)
class MessagesRequest:
    """The only parts of a Messages body the gateway reads; the rest passes through untouched."""

    body: bytes
    document: dict[str, Any]
    model: str
    stream: bool


def parse_messages_body(body: bytes) -> MessagesRequest:
    if not body:
        raise invalid_request("Request body is empty; expected a JSON object")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"Request body is not valid JSON: {exc.msg}") from exc
    if not isinstance(document, dict):
        raise invalid_request("Request body must be a JSON object")
    model = document.get("model")
    if model is None:
        raise invalid_request("model: Field required")
    if not isinstance(model, str) or not model:
        raise invalid_request("model: Input should be a valid model name string")
    stream = document.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise invalid_request("stream: Input should be a valid boolean")
    return MessagesRequest(body=body, document=document, model=model, stream=stream)


def with_model(request: MessagesRequest, upstream_model: str) -> bytes:
    """The body with only `model` changed (re-encoded only when the id really differs)."""
    if upstream_model == request.model:
        return request.body
    document = dict(request.document)
    document["model"] = upstream_model
    return orjson.dumps(document)
