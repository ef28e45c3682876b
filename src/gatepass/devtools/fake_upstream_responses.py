"""Starlette responses for the fake upstream: prebuilt JSON answers and unbuffered SSE."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable, Sequence

import anyio
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

RawHeaders = list[tuple[bytes, bytes]]


def raw_headers(headers: dict[str, str]) -> RawHeaders:
    """ASGI raw headers (lowercased names) from a dict."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class Bytes(Response):
    """A complete response from prebuilt raw headers (skips Starlette's header rendering)."""

    def __init__(
        self, body: bytes, status: int, headers: RawHeaders, request_id: str | None
    ) -> None:
        self.body = body
        self.status_code = status
        self.background = None
        self.raw_headers = [*headers, (b"content-length", str(len(body)).encode())]
        if request_id is not None:
            self.raw_headers.append((b"request-id", request_id.encode()))


class EventStream(StreamingResponse):
    """An unbuffered SSE response that notices the client leaving, even during a silence."""

    def __init__(
        self,
        events: Sequence[tuple[float, bytes]],
        status: int,
        headers: RawHeaders,
        on_disconnect: Callable[[], None],
    ) -> None:
        self._chunks = self._produce(events)
        super().__init__(self._chunks, status_code=status)
        self.raw_headers = headers
        self._on_disconnect = on_disconnect

    @staticmethod
    async def _produce(events: Sequence[tuple[float, bytes]]) -> AsyncGenerator[bytes, None]:
        for delay, chunk in events:
            if math.isinf(delay):
                await anyio.sleep_forever()
            elif delay > 0:
                await anyio.sleep(delay)
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ended = gone = False
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal gone
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    gone = not ended  # uvicorn also reports disconnect once the response is done
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                try:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": self.status_code,
                            "headers": self.raw_headers,
                        }
                    )
                    async for chunk in self._chunks:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    ended = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except OSError:
                    gone = True
                group.cancel_scope.cancel()
        finally:
            await self._chunks.aclose()
        if gone:
            self._on_disconnect()
