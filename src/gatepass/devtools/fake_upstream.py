"""A fake Anthropic Messages API upstream for tests, `gatepass dev` and the benchmark.

Run it in-process (`FakeUpstream().app` with `serve_in_thread`) or as a process:
`python -m gatepass.devtools.fake_upstream --port 9000`. Out-of-process callers steer it with
`POST /_fake/script`, `POST /_fake/reset` and `GET /_fake/requests`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import anyio
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gatepass.devtools.fake_upstream_responses import Bytes, EventStream, raw_headers
from gatepass.devtools.fake_upstream_types import (
    JSON_CONTENT_TYPE,
    SSE_CONTENT_TYPE,
    RecordedRequest,
    Scripted,
    ScriptItem,
    StreamScript,
    error_envelope,
    script_from_json,
    sse,
)
from gatepass.devtools.fake_upstream_wire import (
    JSON_BAD,
    MODELS_BY_ID,
    MessageMaker,
    missing_field,
    models_page,
    random_id,
    ratelimit_headers,
)
from gatepass.devtools.server import make_server

__all__ = [
    "FakeUpstream",
    "RecordedRequest",
    "Scripted",
    "StreamScript",
    "build_server",
    "main",
    "sse",
]

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
KNOWN_PATHS = {"/v1/messages": "POST", "/v1/messages/count_tokens": "POST", "/v1/models": "GET"}


class FakeUpstream:
    """An in-memory Anthropic API: answers, records, and can be scripted from tests.

    `api_key=None` accepts any caller; otherwise the key must come as `x-api-key` or
    `Authorization: Bearer`. `latency` is waited before the first byte of any answer,
    `token_delay` before each text delta of a generated stream. `record=False` keeps only
    `request_count` (for the benchmark).

    Order of handling for every path but `/_fake/*`: record, wait `latency`, check the key
    (a 401 does not use up a script), answer a POST with the next queued script if any,
    otherwise generate the answer. Token and cache accounting: see `MessageMaker.usage`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        latency: float = 0.0,
        token_delay: float = 0.0,
        deltas: int = 5,
        record: bool = True,
    ) -> None:
        if deltas < 0 or latency < 0 or token_delay < 0:
            raise ValueError("deltas, latency and token_delay must not be negative")
        self.api_key = api_key
        self.latency = latency
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.request_count = 0
        self._scripts: deque[ScriptItem] = deque()
        self._disconnects = 0
        self._disconnected = threading.Condition()
        self._maker = MessageMaker(deltas, token_delay)
        self._keys: set[tuple[bytes, bytes]] = set()
        if api_key is not None:
            self._keys = {
                (b"x-api-key", api_key.encode()),
                (b"authorization", b"Bearer " + api_key.encode()),
                (b"authorization", b"bearer " + api_key.encode()),
            }
        limits = ratelimit_headers()
        self._json_headers = raw_headers({"content-type": JSON_CONTENT_TYPE})
        self._message_headers = raw_headers({"content-type": JSON_CONTENT_TYPE, **limits})
        self._stream_headers = raw_headers(
            {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache", **limits}
        )
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=METHODS)])

    # -- test-facing API ---------------------------------------------------------------

    def script(self, *items: ScriptItem) -> None:
        """Queue answers for the next POSTs (FIFO), instead of the generated ones."""
        for item in items:
            if not isinstance(item, Scripted | StreamScript):
                raise TypeError(f"expected Scripted or StreamScript, got {type(item).__name__}")
        self._scripts.extend(items)

    def reset(self) -> None:
        """Forget recorded requests, queued scripts, counters and the prompt cache."""
        self.requests.clear()
        self._scripts.clear()
        self.request_count = 0
        self._maker.reset()
        with self._disconnected:
            self._disconnects = 0

    @property
    def disconnects(self) -> int:
        """Streams whose client went away before the end."""
        return self._disconnects

    def wait_for_disconnect(self, timeout: float = 5.0, count: int = 1) -> bool:
        """Block (in any thread) until `count` disconnects have been seen; False on timeout."""
        with self._disconnected:
            return self._disconnected.wait_for(lambda: self._disconnects >= count, timeout)

    def _note_disconnect(self) -> None:
        with self._disconnected:
            self._disconnects += 1
            self._disconnected.notify_all()

    # -- request handling ----------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        scope = request.scope
        path: str = scope["path"]
        if path.startswith("/_fake/"):
            return await self._control(request, path)
        method: str = scope["method"]
        body = await request.body()
        self.request_count += 1
        if self.record:
            headers = [
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
            ]
            query = scope["query_string"].decode("latin-1")
            self.requests.append(RecordedRequest(method, path, query, headers, body))
        if self.latency > 0:
            await anyio.sleep(self.latency)
        rid = random_id("req_")
        if self._keys and self._keys.isdisjoint(scope["headers"]):
            return self._error(401, "authentication_error", "invalid x-api-key", rid)
        if method == "POST" and self._scripts:
            return await self._scripted(self._scripts.popleft(), rid)
        if method == "POST" and path == "/v1/messages":
            return self._messages(body, rid)
        if method == "POST" and path == "/v1/messages/count_tokens":
            return self._count_tokens(body, rid)
        if method == "GET" and path == "/v1/models":
            return self._models(request, rid)
        if method == "GET" and path.startswith("/v1/models/"):
            found = MODELS_BY_ID.get(path.removeprefix("/v1/models/"))
            if found is None:
                return self._error(404, "not_found_error", f"model: {path[11:]}", rid)
            return Bytes(found, 200, self._json_headers, rid)
        if path in KNOWN_PATHS:
            return self._error(405, "invalid_request_error", f"Method {method} not allowed", rid)
        return self._error(404, "not_found_error", "Not found", rid)

    def _error(self, status: int, kind: str, message: str, rid: str) -> Response:
        return Bytes(
            orjson.dumps(error_envelope(kind, message, rid)), status, self._json_headers, rid
        )

    def _parse(self, body: bytes, fields: tuple[str, ...], rid: str) -> dict[str, Any] | Response:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._error(400, "invalid_request_error", JSON_BAD, rid)
        problem = missing_field(payload, fields)
        if problem is not None:
            return self._error(400, "invalid_request_error", problem, rid)
        assert isinstance(payload, dict)
        return payload

    def _messages(self, body: bytes, rid: str) -> Response:
        payload = self._parse(body, ("model", "max_tokens", "messages"), rid)
        if isinstance(payload, Response):
            return payload
        usage = self._maker.usage(body, payload)
        model = payload["model"]
        if payload.get("stream") is True:
            headers = [*self._stream_headers, (b"request-id", rid.encode())]
            events = self._maker.stream(model, usage)
            return EventStream(events, 200, headers, self._note_disconnect)
        return Bytes(self._maker.message(model, usage), 200, self._message_headers, rid)

    def _count_tokens(self, body: bytes, rid: str) -> Response:
        payload = self._parse(body, ("model", "messages"), rid)
        if isinstance(payload, Response):
            return payload
        count = orjson.dumps({"input_tokens": max(1, len(body) // 4)})
        return Bytes(count, 200, self._message_headers, rid)

    def _models(self, request: Request, rid: str) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", "20"))
            if not 1 <= limit <= 1000:
                raise ValueError
            page = models_page(limit, params.get("after_id"), params.get("before_id"))
        except ValueError:
            return self._error(400, "invalid_request_error", "invalid pagination parameters", rid)
        return Bytes(orjson.dumps(page), 200, self._json_headers, rid)

    async def _scripted(self, item: ScriptItem, rid: str) -> Response:
        given = {k.lower() for k in item.headers}
        defaults = {"request-id": rid}
        if isinstance(item, StreamScript):
            defaults |= {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache"}
            headers = raw_headers(
                item.headers | {k: v for k, v in defaults.items() if k not in given}
            )
            events = [(delay, chunk.encode()) for delay, chunk in item.events]
            return EventStream(events, item.status, headers, self._note_disconnect)
        if item.delay > 0:
            await anyio.sleep(item.delay)
        defaults["content-type"] = JSON_CONTENT_TYPE
        headers = raw_headers(item.headers | {k: v for k, v in defaults.items() if k not in given})
        return Bytes(item.render(), item.status, headers, None)

    # -- control surface (never recorded, no auth, no latency) -------------------------

    async def _control(self, request: Request, path: str) -> Response:
        method = request.method
        if method == "POST" and path == "/_fake/script":
            try:
                items = orjson.loads(await request.body())
                parsed = [
                    script_from_json(i) for i in (items if isinstance(items, list) else [items])
                ]
            except (orjson.JSONDecodeError, ValueError) as exc:
                return self._error(400, "invalid_request_error", str(exc), random_id("req_"))
            self.script(*parsed)
            return Bytes(
                orjson.dumps({"queued": len(self._scripts)}), 200, self._json_headers, "req_control"
            )
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            return Bytes(b'{"ok":true}', 200, self._json_headers, "req_control")
        if method == "GET" and path == "/_fake/requests":
            answer = {
                "count": self.request_count,
                "disconnects": self._disconnects,
                "requests": [r.to_json() for r in self.requests],
            }
            return Bytes(orjson.dumps(answer), 200, self._json_headers, "req_control")
        return self._error(404, "not_found_error", "Not found", "req_control")


def build_server(argv: Sequence[str] | None = None) -> tuple[FakeUpstream, uvicorn.Server]:
    """Parse the command line into a FakeUpstream and the uvicorn server that will serve it."""
    parser = argparse.ArgumentParser(
        prog="python -m gatepass.devtools.fake_upstream", description="A fake Anthropic API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before the first byte")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds before each delta")
    parser.add_argument("--deltas", type=int, default=5, help="text deltas per message")
    parser.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    parser.add_argument("--no-record", action="store_true", help="count requests, keep none")
    args = parser.parse_args(argv)
    fake = FakeUpstream(
        args.api_key, args.latency, args.token_delay, args.deltas, record=not args.no_record
    )
    server = make_server(
        fake.app,
        host=args.host,
        port=args.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=False,
        lifespan="off",
    )
    return fake, server


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: serve a FakeUpstream with uvicorn (uvloop/httptools when installed)."""
    _, server = build_server(argv)
    config = server.config
    print(f"fake upstream on http://{config.host}:{config.port}", file=sys.stderr)
    server.run()


if __name__ == "__main__":
    main()
