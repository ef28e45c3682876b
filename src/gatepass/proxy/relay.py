"""Forwarding one request to its provider and relaying the answer, byte for byte.

JSON answers are read whole (they are small, and usage is in them) and sent unchanged.
SSE answers are relayed chunk by chunk as they arrive; usage is read on the side. When the
upstream is silent for `ping_interval` seconds at an event boundary, a `ping` event is sent
so clients and proxies do not time out. If the client goes away, the upstream request is
closed at once and the usage seen so far is still recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from gatepass.policy.catalog import Upstream
from gatepass.proxy.errors import GatewayError
from gatepass.proxy.headers import relayed_response_headers, upstream_request_headers
from gatepass.proxy.usage import PING_EVENT, SseUsageTap, Usage, usage_from_message

log = logging.getLogger("gatepass.proxy")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
RATELIMIT_PREFIX = b"anthropic-ratelimit-"


@dataclass(slots=True)
class Outcome:
    """What happened to one proxied request, for its log row."""

    status: int = 0
    upstream_request_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    first_byte_at: float | None = None  # perf_counter() when the first byte was sent
    error_type: str | None = None
    error_message: str | None = None
    client_disconnected: bool = False


def _sse_error(kind: str, message: str) -> bytes:
    data = orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    return b"event: error\ndata: " + data + b"\n\n"


class Relay:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        ping_interval: float,
        connect_timeout: float,
    ) -> None:
        self._session = session
        self._ping_interval = ping_interval
        self._connect_timeout = connect_timeout
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def forward(
        self,
        *,
        upstream: Upstream,
        path: str,
        query: bytes,
        client_headers: list[tuple[bytes, bytes]],
        body: bytes,
        request_id: str,
        receive: Receive,
        send: Send,
        outcome: Outcome,
        own_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Relay one request; `own_headers` (Gatepass's usage-limit headers) replace the
        upstream's `anthropic-ratelimit-*` on a successful answer."""
        url = upstream.base_url + path
        if query:
            url += "?" + query.decode("latin-1")
        headers = upstream_request_headers(client_headers, upstream.api_key, upstream.extra_headers)
        timeout = self._timeouts.get(upstream.timeout)
        if timeout is None:  # one per provider timeout, not one per request
            timeout = aiohttp.ClientTimeout(total=upstream.timeout, connect=self._connect_timeout)
            self._timeouts[upstream.timeout] = timeout
        try:
            response = await self._session.post(url, data=body, headers=headers, timeout=timeout)
        except TimeoutError as exc:
            raise GatewayError(
                504, "timeout_error", "The upstream provider did not answer in time"
            ) from exc
        except aiohttp.ClientError as exc:
            log.warning("upstream %s unreachable: %s", upstream.name, exc.__class__.__name__)
            raise GatewayError(
                502, "api_error", "The upstream provider could not be reached"
            ) from exc
        try:
            outcome.status = response.status
            outcome.upstream_request_id = response.headers.get("request-id")
            if response.status == 401:
                # The provider refused *our* key. Relaying its 401 would make the client
                # throw away a valid credential; this is the operator's problem.
                log.error("provider %s rejected the gateway's API key (401)", upstream.name)
                raise GatewayError(
                    502,
                    "api_error",
                    "The gateway's upstream credentials were rejected; an administrator must fix the provider configuration",
                )
            headers_out = relayed_response_headers(response.raw_headers)
            if own_headers and response.status < 400:
                headers_out = [h for h in headers_out if not h[0].startswith(RATELIMIT_PREFIX)]
                headers_out.extend(own_headers)
            if outcome.upstream_request_id is None:
                headers_out.append((b"request-id", request_id.encode()))
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("text/event-stream"):
                await self._relay_stream(response, headers_out, receive, send, outcome)
            else:
                await self._relay_whole(response, headers_out, send, outcome, path)
        finally:
            response.close()

    async def _relay_whole(
        self,
        response: aiohttp.ClientResponse,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        outcome: Outcome,
        path: str,
    ) -> None:
        try:
            body = await response.read()
        except TimeoutError as exc:
            raise GatewayError(
                504, "timeout_error", "The upstream provider did not answer in time"
            ) from exc
        except aiohttp.ClientError as exc:
            raise GatewayError(
                502, "api_error", "The upstream connection failed mid-response"
            ) from exc
        if response.status == 200 and path == "/v1/messages":
            outcome.usage = usage_from_message(body)
        elif response.status >= 400:
            outcome.error_type, outcome.error_message = _error_fields(body)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        outcome.first_byte_at = time.perf_counter()
        await send({"type": "http.response.body", "body": body})

    async def _relay_stream(
        self,
        response: aiohttp.ClientResponse,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
        outcome: Outcome,
    ) -> None:
        tap = SseUsageTap()
        outcome.usage = tap.usage
        relay_task = asyncio.current_task()
        assert relay_task is not None

        async def watch_for_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    outcome.client_disconnected = True
                    relay_task.cancel()
                    return

        watcher = asyncio.create_task(watch_for_disconnect())
        try:
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            outcome.first_byte_at = time.perf_counter()
            await self._pump(response, tap, send, outcome)
        except asyncio.CancelledError:
            if not outcome.client_disconnected:
                raise
            relay_task.uncancel()
            outcome.error_type = "client_disconnected"
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _pump(
        self,
        response: aiohttp.ClientResponse,
        tap: SseUsageTap,
        send: Send,
        outcome: Outcome,
    ) -> None:
        content = response.content
        while True:
            try:
                async with asyncio.timeout(self._ping_interval) as silence:
                    chunk = await content.readany()
            except TimeoutError as exc:
                if silence.expired():
                    if tap.at_boundary:
                        await send(
                            {"type": "http.response.body", "body": PING_EVENT, "more_body": True}
                        )
                    continue
                await self._end_with_error(
                    tap, send, outcome, "timeout_error", "The upstream provider took too long", exc
                )
                return
            except aiohttp.ClientError as exc:
                await self._end_with_error(
                    tap,
                    send,
                    outcome,
                    "api_error",
                    "The upstream connection was lost mid-stream",
                    exc,
                )
                return
            if not chunk:
                break
            tap.feed(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _end_with_error(
        self,
        tap: SseUsageTap,
        send: Send,
        outcome: Outcome,
        kind: str,
        message: str,
        exc: BaseException | None,
    ) -> None:
        """Close a stream that broke after bytes were sent: a terminal SSE `error` event."""
        log.warning("upstream stream ended abnormally: %r", exc)
        outcome.error_type, outcome.error_message = kind, message
        closing = b"" if tap.at_boundary else b"\n\n"
        await send(
            {
                "type": "http.response.body",
                "body": closing + _sse_error(kind, message),
                "more_body": True,
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    try:
        document = orjson.loads(body)
        error = document["error"]
        return str(error.get("type"))[:64], str(error.get("message"))[:1000]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "upstream_error", None
