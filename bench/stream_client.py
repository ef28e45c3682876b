"""A small streaming load generator: N keep-alive connections, each sending Messages requests
with `"stream": true` back to back, timing each one from the first byte written to:
the first response byte (TTFB), the first `content_block_delta` event, and the last chunk.

Raw asyncio streams on uvloop, no HTTP library: the per-request client cost stays small and
constant across configurations. Prints one JSON object.

    python bench/stream_client.py URL --connections 16 --duration 5 [--api-key K | --bearer T]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

DELTA = b"content_block_delta"
END = b"\r\n0\r\n\r\n"
READ_TIMEOUT = 10.0  # seconds of silence before a stream counts as failed


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def worker(
    host: str, port: int, request: bytes, stop: float, out: dict[str, list[float]]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(request)
            buffer = b""
            first_byte = first_delta = None
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                now = time.perf_counter()
                if first_byte is None:
                    first_byte = now
                    if not chunk.startswith(b"HTTP/1.1 200"):
                        out["errors"].append(1.0)
                buffer += chunk
                if first_delta is None and DELTA in buffer:
                    first_delta = now
                if buffer.endswith(END):
                    break
            ended = time.perf_counter()
            if first_delta is None:
                out["errors"].append(1.0)
                continue
            out["ttfb"].append(first_byte - started)
            out["first_delta"].append(first_delta - started)
            out["total"].append(ended - started)
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    body = json.dumps(
        {
            "model": args.model,
            "max_tokens": 256,
            "stream": True,
            "messages": [{"role": "user", "content": "Say hello"}],
        }
    ).encode()
    auth = f"x-api-key: {args.api_key}\r\n" if args.api_key else ""
    if args.bearer:
        auth += f"authorization: Bearer {args.bearer}\r\n"
    request = (
        f"POST {url.path} HTTP/1.1\r\nhost: {url.netloc}\r\ncontent-type: application/json\r\n"
        f"anthropic-version: 2023-06-01\r\n{auth}content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    out: dict[str, list[float]] = {"ttfb": [], "first_delta": [], "total": [], "errors": []}
    # warm-up: one request per connection, not counted
    await asyncio.gather(
        *(worker(url.hostname or "", url.port or 80, request, 0, out) for _ in range(1))
    )
    started = time.perf_counter()
    stop = started + args.duration
    results = await asyncio.gather(
        *(
            worker(url.hostname or "", url.port or 80, request, stop, out)
            for _ in range(args.connections)
        ),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    ms = 1000.0
    summary: dict[str, object] = {
        "connections": args.connections,
        "streams": len(out["total"]),
        "streams_per_s": round(len(out["total"]) / elapsed, 1),
        "errors": len(out["errors"]) + len(failures),
    }
    for name in ("ttfb", "first_delta", "total"):
        for q in (50, 99):
            value = percentile(out[name], q)
            summary[f"{name}_p{q}_ms"] = None if value is None else round(value * ms, 3)
    if failures:
        summary["failures"] = failures[:3]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--model", default="claude-sonnet-4-6")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--bearer", default="")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
