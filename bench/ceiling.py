"""CEILING: the thinnest passthrough proxy on Gatepass's server stack (raw ASGI on uvicorn with
uvloop and httptools). One route, one shared upstream client, the body relayed as it comes.

    CEILING_CLIENT=aiohttp|httpx2 CEILING_UPSTREAM=http://127.0.0.1:19001 \
        uvicorn bench.ceiling:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import os
from typing import Any

UPSTREAM = os.environ.get("CEILING_UPSTREAM", "http://127.0.0.1:19001")
CLIENT = os.environ.get("CEILING_CLIENT", "aiohttp")
FORWARD = (b"content-type", b"anthropic-version", b"accept")
DROP = {"content-length", "transfer-encoding", "connection", "date", "server"}
state: dict[str, Any] = {}


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if CLIENT == "aiohttp":
                    import aiohttp

                    state["client"] = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
                    )
                else:
                    import httpx2

                    state["client"] = httpx2.AsyncClient(
                        limits=httpx2.Limits(max_connections=None, max_keepalive_connections=256),
                        timeout=600,
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await state["client"].close() if CLIENT == "aiohttp" else await state[
                    "client"
                ].aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = await _body(receive)
    headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARD}
    headers["x-api-key"] = "sk-ant-bench"
    url = UPSTREAM + scope["path"].removeprefix("/anthropic")
    client = state["client"]
    if CLIENT == "aiohttp":
        async with client.post(url, data=body, headers=headers) as response:
            out = [
                (k.lower().encode(), v.encode())
                for k, v in response.headers.items()
                if k.lower() not in DROP
            ]
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    else:
        request = client.build_request("POST", url, content=body, headers=headers)
        response = await client.send(request, stream=True)
        try:
            out = [
                (k.lower().encode(), v.encode())
                for k, v in response.headers.items()
                if k.lower() not in DROP
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await response.aclose()
    await send({"type": "http.response.body", "body": b""})
