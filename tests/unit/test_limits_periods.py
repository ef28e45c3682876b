"""Budget windows: calendar-aligned and rolling, at their edges, in UTC."""

from __future__ import annotations

import calendar

import pytest

from gatepass.limits.periods import Period


def ts(text: str) -> int:
    """Unix seconds of `YYYY-MM-DDTHH:MM:SS` (UTC)."""
    date, time = text.split("T")
    y, mo, d = (int(p) for p in date.split("-"))
    h, mi, s = (int(p) for p in time.split(":"))
    return calendar.timegm((y, mo, d, h, mi, s))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1m", Period(1, "m")),
        ("5m", Period(5, "m")),
        ("1h", Period(1, "h")),
        ("1d", Period(1, "d")),
        ("2w", Period(2, "w")),
        ("1mo", Period(1, "mo")),
        ("3mo", Period(3, "mo")),
        ("1 month", Period(1, "mo")),
        ("2 weeks", Period(2, "w")),
        ("1min", Period(1, "m")),
    ],
)
def test_periods_parse_from_operator_text(text: str, expected: Period) -> None:
    assert Period.parse(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "1y", "mo", "-1d", "1.5h", "1 fortnight"])
def test_nonsense_periods_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid period"):
        Period.parse(text)


def test_a_calendar_month_ends_at_the_first_of_the_next_month() -> None:
    month = Period(1, "mo")
    assert month.window(ts("2026-01-31T23:59:59")) == (
        ts("2026-01-01T00:00:00"),
        ts("2026-02-01T00:00:00"),
    )
    assert month.window(ts("2026-02-01T00:00:00")) == (
        ts("2026-02-01T00:00:00"),
        ts("2026-03-01T00:00:00"),
    )


def test_calendar_months_cross_the_year_and_know_leap_years() -> None:
    month = Period(1, "mo")
    assert month.window(ts("2026-12-31T23:59:59"))[1] == ts("2027-01-01T00:00:00")
    assert month.window(ts("2028-02-29T12:00:00")) == (
        ts("2028-02-01T00:00:00"),
        ts("2028-03-01T00:00:00"),
    )


def test_quarters_start_in_january_april_july_and_october() -> None:
    quarter = Period(3, "mo")
    assert quarter.window(ts("2026-05-17T08:00:00")) == (
        ts("2026-04-01T00:00:00"),
        ts("2026-07-01T00:00:00"),
    )
    assert quarter.window(ts("2026-12-31T23:59:59")) == (
        ts("2026-10-01T00:00:00"),
        ts("2027-01-01T00:00:00"),
    )


def test_calendar_weeks_start_on_monday_midnight() -> None:
    week = Period(1, "w")
    # 2026-08-06 is a Thursday; its week runs from Monday the 3rd to Monday the 10th
    assert week.window(ts("2026-08-06T15:00:00")) == (
        ts("2026-08-03T00:00:00"),
        ts("2026-08-10T00:00:00"),
    )
    assert week.window(ts("2026-08-10T00:00:00"))[0] == ts("2026-08-10T00:00:00")


def test_days_hours_and_minutes_are_aligned_to_utc_boundaries() -> None:
    assert Period(1, "d").window(ts("2026-03-29T01:30:00")) == (
        ts("2026-03-29T00:00:00"),
        ts("2026-03-30T00:00:00"),
    )
    assert Period(1, "h").window(ts("2026-03-29T01:59:59")) == (
        ts("2026-03-29T01:00:00"),
        ts("2026-03-29T02:00:00"),
    )
    minute = Period(1, "m")
    assert minute.window(ts("2026-03-29T01:00:59")) == (
        ts("2026-03-29T01:00:00"),
        ts("2026-03-29T01:01:00"),
    )
    assert minute.window(ts("2026-03-29T01:01:00"))[0] == ts("2026-03-29T01:01:00")


def test_a_european_dst_night_is_still_24_hours_in_utc() -> None:
    # clocks in Europe jump on 2026-03-29 at 01:00 UTC; UTC windows do not notice
    start, end = Period(1, "d").window(ts("2026-03-29T12:00:00"))
    assert end - start == 86400


def test_rolling_days_run_from_the_anchor() -> None:
    anchor = ts("2026-08-14T09:12:00")
    thirty = Period(30, "d")
    assert thirty.window(ts("2026-08-14T09:12:00"), anchor) == (anchor, anchor + 30 * 86400)
    assert thirty.window(ts("2026-09-13T09:11:59"), anchor)[1] == ts("2026-09-13T09:12:00")
    assert thirty.window(ts("2026-09-13T09:12:00"), anchor)[0] == ts("2026-09-13T09:12:00")


def test_rolling_months_clamp_to_short_months_and_come_back() -> None:
    anchor = ts("2026-01-31T10:00:00")
    month = Period(1, "mo")
    assert month.window(ts("2026-02-15T00:00:00"), anchor) == (anchor, ts("2026-02-28T10:00:00"))
    assert month.window(ts("2026-03-01T00:00:00"), anchor) == (
        ts("2026-02-28T10:00:00"),
        ts("2026-03-31T10:00:00"),
    )
    assert month.window(ts("2026-04-30T09:59:59"), anchor)[1] == ts("2026-04-30T10:00:00")


def test_rolling_minutes_start_at_the_anchor_second() -> None:
    anchor = ts("2026-08-14T09:12:30")
    assert Period(1, "m").window(ts("2026-08-14T09:13:29"), anchor) == (anchor, anchor + 60)
    assert Period(1, "m").window(ts("2026-08-14T09:13:30"), anchor)[0] == anchor + 60


@pytest.mark.parametrize(
    ("period", "word"),
    [("1h", "daily"), ("1d", "daily"), ("7d", "weekly"), ("1w", "weekly"), ("1mo", "monthly")],
)
def test_overage_period_names_the_clients_know(period: str, word: str) -> None:
    assert Period.parse(period).overage_period == word
