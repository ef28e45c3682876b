"""Serve an ASGI app with uvicorn on a socket we bind first, so port 0 works and the URL is known."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

START_TIMEOUT = 10.0  # seconds


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: no 40 ms Nagle/delayed-ACK stall on split writes.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(512)
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """A uvicorn server that reports when it is accepting connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await super().startup(sockets=sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        """uvicorn's loop notices `should_exit` only every 0.1 s; `stop()` ends it at once."""
        assert self._stop is not None
        ticking = asyncio.create_task(super().main_loop())
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({ticking, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ticking, stopping):
            task.cancel()
        await asyncio.gather(ticking, stopping, return_exceptions=True)

    def stop(self) -> None:
        """Thread-safe: ask the server to shut down now."""
        self.should_exit = True
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)


def make_server(app: Any) -> _Server:
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2, access_log=False
    )
    return _Server(config)


@contextmanager
def serve_in_thread(app: Any, sock: socket.socket) -> Iterator[None]:
    """Run `app` on `sock` in a daemon thread until the block exits."""
    server = make_server(app)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
        finally:
            server.ready.set()

    thread = threading.Thread(target=run, name="idp-dev", daemon=True)
    thread.start()
    if not server.ready.wait(START_TIMEOUT) or failure or not server.started:
        server.should_exit = True
        sock.close()
        raise RuntimeError("idp-dev failed to start") from (failure[0] if failure else None)
    try:
        yield
    finally:
        server.stop()
        thread.join(START_TIMEOUT)
        sock.close()
