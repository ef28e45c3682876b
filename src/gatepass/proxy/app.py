"""The `/anthropic` surface: a plain ASGI app, since every proxied request passes through it.

Order of checks for a Messages request: credential (401) → body size (413) → JSON and
`model` (400) → model known (404) → model allowed (400) → forward. Nothing reaches the
upstream until all of them pass, and every answer carries a `request-id`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from gatepass.limits.limiter import Ticket
from gatepass.limits.pricing import NANO_PER_USD
from gatepass.logs.capture import Capture
from gatepass.logs.structured import REQUEST_ID
from gatepass.policy.keys import Denial
from gatepass.policy.principal import Principal
from gatepass.policy.tokens import looks_like_jwt
from gatepass.proxy import errors
from gatepass.proxy.claude_code import (
    MAX_TELEMETRY_BYTES,
    TELEMETRY_PATHS,
    matches_etag,
    settings_document,
)
from gatepass.proxy.errors import GatewayError
from gatepass.proxy.models_list import model_object, model_page
from gatepass.proxy.relay import Outcome, Receive, Send
from gatepass.proxy.request import (
    ClientGone,
    credentials,
    header,
    parse_messages_body,
    read_body,
    with_model,
)
from gatepass.runtime import Gateway

log = logging.getLogger("gatepass.proxy")

PREFIX = "/anthropic"
PROXIED_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
LIMITED_PATH = "/v1/messages"  # counting tokens is free: no limits, no cost
USAGE_PATH = "/api/oauth/usage"
EMPTY_OK_PATHS = frozenset({"", "/", "/api/hello"})

Scope = dict[str, Any]

# When several credentials fail, report the most specific reason first.
DENIAL_ORDER: list[Denial] = [
    "revoked",
    "expired",
    "user_disabled",
    "session_revoked",
    "invalid_token",
    "unknown",
]
DENIAL_MESSAGES: dict[Denial, str] = {
    "revoked": "This API key has been revoked",
    "expired": "This API key has expired",
    "user_disabled": "This account has been disabled; contact your administrator",
    "session_revoked": "This session has been signed out; sign in again",
    "invalid_token": "Invalid or expired token; sign in again",
    "unknown": "Invalid API key",
}


_request_ids = random.Random()  # seeded from os.urandom; ids need to be unique, not secret


def new_request_id() -> str:
    """`req_gp_` + 24 hex digits: microseconds since the epoch, then 44 random bits.

    Time first, so ids of the request log's index arrive in order: random ids scatter
    every insert across the index and cost more than the rest of the row. No system call
    (`secrets` would make one per request).
    """
    return f"req_gp_{time.time_ns() // 1000:013x}{_request_ids.getrandbits(44):011x}"


class AnthropicProxy:
    """ASGI app for every path under `/anthropic`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        REQUEST_ID.set(request_id)  # for log lines (gatepass.logs.structured)
        path = scope["path"][len(PREFIX) :]
        method = scope["method"]
        try:
            if path in PROXIED_PATHS:
                if method != "POST":
                    raise _method_not_allowed(method)
                await self._proxy(scope, receive, send, path, request_id)
            elif path == "/v1/models" or path.startswith("/v1/models/"):
                if method not in ("GET", "HEAD"):
                    raise _method_not_allowed(method)
                await self._models(scope, send, path, request_id)
            elif path == "/managed/settings":
                if method not in ("GET", "HEAD"):
                    raise _method_not_allowed(method)
                await self._managed_settings(scope, send, request_id)
            elif path == USAGE_PATH:
                if method not in ("GET", "HEAD"):
                    raise _method_not_allowed(method)
                await self._usage(scope, send, request_id)
            elif path in TELEMETRY_PATHS:
                if method != "POST":
                    raise _method_not_allowed(method)
                await self._telemetry(scope, receive, send, request_id)
            elif path in EMPTY_OK_PATHS and method in ("GET", "HEAD"):
                await _send_json(send, 200, {}, request_id)
            elif path.startswith("/v1/"):
                raise errors.not_supported(
                    f"{method} {PREFIX}{path} is not supported by this gateway"
                )
            else:
                raise errors.not_found(f"Not found: {PREFIX}{path}")
        except GatewayError as error:
            await _send_error(send, error, request_id)
        except ClientGone:
            return

    async def authenticate(self, scope: Scope) -> Principal:
        """The principal behind the request's credential; 401 when there is none.

        A credential is a virtual key (`gp-…`) or a JWT Gatepass issued; anything else is
        refused. Every refusal but a missing credential tells clients not to retry.
        """
        candidates = credentials(scope)
        if not candidates:
            raise errors.authentication(
                "Missing credentials: send a virtual key as x-api-key or Authorization: Bearer"
            )
        denials: list[Denial] = []
        for candidate in candidates:
            try:
                if looks_like_jwt(candidate):
                    check = await self.gateway.tokens.check(candidate)
                else:
                    check = await self.gateway.keys.check(candidate)
            except Exception as exc:
                log.exception("credential lookup failed")
                raise GatewayError(
                    503, "api_error", "Authentication is temporarily unavailable; try again shortly"
                ) from exc
            if check.principal is not None:
                return check.principal
            if check.denial is not None:
                denials.append(check.denial)
        worst: Denial = min(denials, key=DENIAL_ORDER.index, default="unknown")
        raise errors.authentication(DENIAL_MESSAGES[worst], final=True)

    async def _proxy(
        self, scope: Scope, receive: Receive, send: Send, path: str, request_id: str
    ) -> None:
        started = time.perf_counter()
        gateway = self.gateway
        # the limiter's clock: a budget window's spend read back from the log matches its count
        received_at = datetime.fromtimestamp(gateway.limits.clock(), UTC)
        principal = await self.authenticate(scope)
        body = await read_body(scope, receive, gateway.settings.max_body_bytes)
        request = parse_messages_body(body)
        catalog = gateway.catalog
        route = catalog.resolve(request.model)
        if route is None:
            raise errors.not_found(f"model: {request.model!r} is not available on this gateway")
        if not principal.may_use(route, catalog):
            raise errors.invalid_request(
                f"model: {request.model!r} is not allowed for this API key"
            )
        limiter = gateway.limits
        priced_as = [route.upstream_model, route.model_id]
        ticket: Ticket | None = None
        if path == LIMITED_PATH:
            max_tokens = request.document.get("max_tokens")
            plan = limiter.plan_request(
                principal,
                request_id=request_id,
                model_ids=priced_as,
                body_bytes=len(body),
                max_tokens=max_tokens if isinstance(max_tokens, int) else 0,
            )
            if plan is not None:
                ticket = await limiter.admit(plan)  # raises the caller's 429 or a 503
        outcome = Outcome()
        capture = Capture(body) if gateway.capture_bodies else None  # logs.capture = "full"
        if capture is not None:
            send = capture.wrap(send)
        gateway.request_started()
        try:
            await gateway.relay.forward(
                upstream=route.upstream,
                path=path,
                query=scope.get("query_string", b""),
                client_headers=scope["headers"],
                body=with_model(request, route.upstream_model),
                request_id=request_id,
                receive=receive,
                send=send,
                outcome=outcome,
                own_headers=None if ticket is None else ticket.headers(),
            )
        except GatewayError as error:
            outcome.status = error.status
            outcome.error_type, outcome.error_message = error.type, error.message
            raise
        finally:
            gateway.request_finished()
            ended = time.perf_counter()
            usage = outcome.usage
            nano = limiter.cost(priced_as, usage) if path == LIMITED_PATH else 0
            try:
                if ticket is not None:  # settled before the log row: see limits.backend
                    await asyncio.shield(limiter.settle(ticket, usage, nano))
            finally:
                gateway.log_writer.submit(
                    {
                        "created_at": received_at,
                        "request_id": request_id,
                        "upstream_request_id": outcome.upstream_request_id,
                        "method": "POST",
                        "path": path,
                        "key_id": principal.key_id,
                        "key_name": principal.key_name,
                        "user_email": principal.user_email,
                        "model": route.model_id,
                        "provider": route.upstream.name,
                        "status": outcome.status,
                        "stream": request.stream,
                        "latency_ms": (ended - started) * 1000,
                        "ttfb_ms": None
                        if outcome.first_byte_at is None
                        else (outcome.first_byte_at - started) * 1000,
                        "input_tokens": usage.input_tokens,
                        "output_tokens": usage.output_tokens,
                        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                        "cache_read_input_tokens": usage.cache_read_input_tokens,
                        "cost_usd": nano / NANO_PER_USD if path == LIMITED_PATH else None,
                        "error_type": outcome.error_type,
                        "error_message": outcome.error_message,
                        "client_disconnected": outcome.client_disconnected,
                        "capture": capture,  # parsed by the log writer, not here
                    }
                )

    async def _models(self, scope: Scope, send: Send, path: str, request_id: str) -> None:
        principal = await self.authenticate(scope)
        catalog = self.gateway.catalog
        visible = [r for r in catalog.ordered() if principal.may_use(r, catalog)]
        if path == "/v1/models":
            page = model_page(visible, scope.get("query_string", b""))
            await _send_json(send, 200, page, request_id, head=scope["method"] == "HEAD")
            return
        wanted = path[len("/v1/models/") :]
        route = catalog.resolve(wanted)
        if route is None or route not in visible:
            raise errors.not_found(f"model: {wanted!r} not found")
        await _send_json(send, 200, model_object(route), request_id, head=scope["method"] == "HEAD")

    async def _managed_settings(self, scope: Scope, send: Send, request_id: str) -> None:
        principal = await self.authenticate(scope)
        if principal.managed_settings is None:
            raise errors.not_found("No managed settings for this key")
        document, checksum = settings_document(principal.key_id, principal.managed_settings)
        etag = f'"{checksum}"'.encode()
        if matches_etag(header(scope, b"if-none-match"), checksum):
            await send(
                {
                    "type": "http.response.start",
                    "status": 304,
                    "headers": [(b"etag", etag), (b"request-id", request_id.encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await _send_json(
            send, 200, document, request_id, head=scope["method"] == "HEAD", extra=[(b"etag", etag)]
        )

    async def _usage(self, scope: Scope, send: Send, request_id: str) -> None:
        principal = await self.authenticate(scope)
        document = await self.gateway.limits.usage_document(principal)
        await _send_json(
            send,
            200,
            document,
            request_id,
            head=scope["method"] == "HEAD",
            extra=[(b"cache-control", b"no-store")],
        )

    async def _telemetry(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        await self.authenticate(scope)
        await read_body(scope, receive, MAX_TELEMETRY_BYTES)
        content_type = header(scope, b"content-type") or b""
        if content_type.startswith(b"application/json"):
            await _send_json(send, 200, {}, request_id)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/x-protobuf"),
                    (b"content-length", b"0"),
                    (b"request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _method_not_allowed(method: str) -> GatewayError:
    return GatewayError(405, "invalid_request_error", f"Method {method} is not allowed here")


async def _send_json(
    send: Send,
    status: int,
    payload: Any,
    request_id: str,
    *,
    head: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"request-id", request_id.encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _send_error(send: Send, error: GatewayError, request_id: str) -> None:
    status, headers, body = error.render(request_id)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
