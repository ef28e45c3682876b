"""Run ASGI apps on real loopback sockets: in a background thread (tests) or together (dev)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def bind_loopback(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket on loopback; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def make_server(app: Any, **config: Any) -> uvicorn.Server:
    """A uvicorn server with quiet defaults suited to tests and `gatepass dev`."""
    config.setdefault("log_level", "warning")
    config.setdefault("lifespan", "on")
    config.setdefault("timeout_graceful_shutdown", 5)
    return uvicorn.Server(uvicorn.Config(app, **config))


@contextmanager
def serve_in_thread(
    app: Any, port: int = 0, sock: socket.socket | None = None, **config: Any
) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in a daemon thread; yields its base URL.

    Pass an already bound `sock` when the app must know its own URL before it starts.
    """
    sock = sock or bind_loopback(port)
    server = make_server(app, **config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="uvicorn-test-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError("server failed to start") from (failure[0] if failure else None)
        thread.join(0.01)
    try:
        yield socket_url(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
