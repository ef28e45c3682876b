"""Small pieces of the proxy's hot path: request ids, relayed headers, log timestamps, metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gatepass.logs.metrics import Metrics
from gatepass.proxy.app import new_request_id
from gatepass.proxy.headers import relayed_response_headers
from gatepass.store.types import sqlite_datetime


def test_request_ids_are_unique_well_formed_and_in_time_order() -> None:
    ids = [new_request_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"req_gp_[0-9a-f]{24}", i) for i in ids)
    # the first 13 hex digits are the microsecond clock: never decreasing
    stamps = [int(i[7:20], 16) for i in ids]
    assert stamps == sorted(stamps)
    now_us = datetime.now(UTC).timestamp() * 1e6
    assert abs(stamps[-1] - now_us) < 60e6


def test_relayed_headers_drop_framing_and_hop_by_hop_in_any_case() -> None:
    upstream = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", b"12"),
        (b"Transfer-Encoding", b"chunked"),
        (b"CONNECTION", b"keep-alive"),
        (b"Set-Cookie", b"session=1"),
        (b"request-id", b"req_1"),
        (b"Anthropic-Ratelimit-Requests-Limit", b"50"),
    ]
    assert relayed_response_headers(upstream) == [
        (b"content-type", b"application/json"),
        (b"request-id", b"req_1"),
        (b"anthropic-ratelimit-requests-limit", b"50"),
    ]


def test_sqlite_timestamps_match_sqlalchemys_format_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert (
        sqlite_datetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05.000000"
    )
    assert sqlite_datetime(datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=plus_two)) == (
        "2026-01-02 01:04:05.000007"
    )
    with pytest.raises(ValueError, match="naive"):
        sqlite_datetime(datetime(2026, 1, 2))


def _sample(text: str, prefix: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(prefix + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_histogram_buckets_are_cumulative_and_inclusive_of_their_bound() -> None:
    metrics = Metrics()
    rows = [
        {"model": "m", "status": 200, "latency_ms": ms, "ttfb_ms": None}
        for ms in (50, 50.001, 1000, 400_000)
    ]
    metrics.observe(rows)
    text = metrics.render({})
    bucket = 'gatepass_request_duration_seconds_bucket{model="m",le="%s"}'
    assert _sample(text, bucket % "0.05") == 1  # 50 ms sits in le=0.05
    assert _sample(text, bucket % "0.1") == 2
    assert _sample(text, bucket % "1") == 3
    assert _sample(text, bucket % "300") == 3
    assert _sample(text, bucket % "+Inf") == 4
    assert _sample(text, 'gatepass_request_duration_seconds_count{model="m"}') == 4
    assert _sample(text, 'gatepass_requests_total{model="m",status="200"}') == 4
    assert "gatepass_time_to_first_byte_seconds_bucket" not in text
    assert _sample(text, "gatepass_client_disconnects_total") == 0


def test_metric_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.observe([{"model": 'we"ird\\', "status": 200}])
    text = metrics.render({})
    assert 'gatepass_requests_total{model="we\\"ird\\\\",status="200"} 1' in text
