"""The provider's notion of now, which tests may move forward instead of sleeping."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time plus an offset that only ever grows."""

    def __init__(self) -> None:
        self.offset = 0.0  # seconds

    def now(self) -> int:
        return int(time.time() + self.offset)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds
