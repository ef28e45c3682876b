"""Request-log rows written off the request path: a queue drained in batches.

The proxy calls `submit()` (no await, no I/O). A background task inserts up to `batch_size`
rows per statement, at least every `flush_interval` seconds. When the database fails, rows
are kept (up to `max_pending`) and retried with back-off, so a short outage loses nothing;
`close()` flushes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("gatepass.logs")

RowSink = Callable[[list[dict[str, Any]]], Awaitable[None]]


class LogWriter:
    def __init__(
        self,
        sink: RowSink,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.25,
        max_pending: int = 100_000,
    ) -> None:
        self._sink = sink
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._pending: deque[dict[str, Any]] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.dropped = 0
        self.on_written: list[Callable[[int], None]] = []  # called with the running total

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gatepass-log-writer")

    def submit(self, row: dict[str, Any]) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1  # oldest row is pushed out; counted so it can be alerted on
        self._pending.append(row)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything pending now (raises if the database refuses)."""
        while self._pending:
            batch = [
                self._pending.popleft() for _ in range(min(self._batch_size, len(self._pending)))
            ]
            try:
                await self._sink(batch)
            except BaseException:
                self._pending.extendleft(reversed(batch))
                raise
            self.written += len(batch)
            for listener in self.on_written:
                listener(self.written)

    async def _run(self) -> None:
        backoff = self._flush_interval
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            try:
                await self.flush()
                backoff = self._flush_interval
            except Exception:
                log.exception(
                    "request log write failed; %d rows kept for retry", len(self._pending)
                )
                backoff = min(backoff * 2, 10.0)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        try:
            await self.flush()
        except Exception:
            log.exception("request log rows lost at shutdown: %d", len(self._pending))
