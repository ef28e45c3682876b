"""Budget periods (`1m` … `1mo`) and the window that holds an instant, all in UTC.

Calendar windows sit on UTC boundaries: `Nm`, `Nh` and `Nd` windows start at whole multiples
of their length since the Unix epoch (`1d` at midnight, `1h` on the hour), `Nw` windows on a
Monday, `Nmo` windows on the first of a month (counted in months since January 1970).
Rolling windows are back-to-back periods of the same length starting at the budget's anchor,
the moment the budget was set (`30d` from the 14th 09:12 UTC, `1mo` from the 31st, clamped to
the last day of shorter months). UTC has no daylight-saving jumps, so every day is 86 400 s.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Unit = Literal["m", "h", "d", "w", "mo"]
UNIT_SECONDS: dict[str, int] = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
UNIT_NAMES: dict[str, str] = {
    "min": "m",
    "minute": "m",
    "hour": "h",
    "day": "d",
    "week": "w",
    "month": "mo",
}
PERIOD_PATTERN = re.compile(r"^(\d{1,4})\s*(mo|m|h|d|w|min|minute|hour|day|week|month)s?$")
FIRST_MONDAY = 4 * 86400  # 1970-01-05T00:00:00Z, seconds since the epoch


@dataclass(frozen=True, slots=True)
class Period:
    count: int
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> Period:
        """`1m`, `5m`, `1h`, `1d`, `7d`, `1w`, `1mo`, `3mo` (also `1 month`, `2 weeks`)."""
        match = PERIOD_PATTERN.match(text.strip().lower())
        if match is None or int(match.group(1)) == 0:
            raise ValueError(
                f"invalid period {text!r}: use a count and a unit, e.g. 1m, 1h, 1d, 1w or 1mo"
            )
        unit = UNIT_NAMES.get(match.group(2), match.group(2))
        return cls(int(match.group(1)), unit)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"

    def describe(self) -> str:
        """`month`, `3 months`, `minute` … for messages ("$50 per month")."""
        name = {"m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month"}[self.unit]
        return name if self.count == 1 else f"{self.count} {name}s"

    @property
    def overage_period(self) -> str:
        """The `overage-period` word clients know: `daily`, `weekly` or `monthly`."""
        if self.unit == "mo":
            return "monthly"
        if self.unit == "w" or (self.unit == "d" and self.count >= 7):
            return "weekly"
        return "daily"

    def window(self, now: float, anchor: float | None = None) -> tuple[int, int]:
        """`(start, end)` in Unix seconds of the window holding `now`; rolling when anchored."""
        if self.unit == "mo":
            return self._month_window(now, anchor)
        length = UNIT_SECONDS[self.unit] * self.count
        origin = int(anchor) if anchor is not None else (FIRST_MONDAY if self.unit == "w" else 0)
        start = origin + ((int(now) - origin) // length) * length
        return start, start + length

    def _month_window(self, now: float, anchor: float | None) -> tuple[int, int]:
        if anchor is None:
            moment = datetime.fromtimestamp(int(now), UTC)
            index = moment.year * 12 + moment.month - 1
            first = index - (index - 1970 * 12) % self.count
            return _month_start(first), _month_start(first + self.count)
        base = datetime.fromtimestamp(int(anchor), UTC)
        moment = datetime.fromtimestamp(int(now), UTC)
        months = (moment.year - base.year) * 12 + moment.month - base.month
        k = (months // self.count) * self.count
        while add_months(base, k) > now:
            k -= self.count
        while add_months(base, k + self.count) <= now:
            k += self.count
        return add_months(base, k), add_months(base, k + self.count)


def _month_start(index: int) -> int:
    """Unix seconds of the first instant of month `index` (year * 12 + month - 1)."""
    year, month0 = divmod(index, 12)
    return calendar.timegm((year, month0 + 1, 1, 0, 0, 0))


def add_months(moment: datetime, months: int) -> int:
    """`moment` plus whole months in Unix seconds, the day clamped to the month's last."""
    year, month0 = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    shifted = moment.replace(year=year, month=month0 + 1, day=day)
    return calendar.timegm(shifted.utctimetuple())
