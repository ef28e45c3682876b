"""Prometheus metrics derived from request-log rows, counted by the log writer.

The hot path does nothing for metrics: the writer's batch goes through `observe` after it is
stored, and gauges (requests in progress) are read at scrape time. Counts are per process,
as Prometheus expects (it sums replicas); they lag requests by one flush interval.

`observe` runs for every request, so it only bumps counters keyed by raw label values;
label names, string conversion and cumulative buckets are all left to `render`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Any

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)  # seconds
TTFB_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)  # seconds
UPSTREAM_FAILURE_STATUSES = frozenset({500, 502, 503, 504, 529})
TOKEN_KINDS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_creation_input_tokens", "cache_creation_input"),
    ("cache_read_input_tokens", "cache_read_input"),
)

Key = tuple[Any, ...]  # raw label values, in the family's label-name order


class Family:
    """A counter family: values by raw label key."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help_text, self.labels = name, help_text, labels
        self.values: defaultdict[Key, float] = defaultdict(int)


class Histogram:
    """Per-key counts of each bucket alone (the last is +Inf), made cumulative at render."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help_text, self.buckets = name, help_text, buckets
        self.labels = ("model",)
        self.counts: dict[Key, list[int]] = {}
        self.sums: defaultdict[Key, float] = defaultdict(float)

    def observe(self, key: Key, value: float) -> None:
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0] * (len(self.buckets) + 1)
        counts[bisect_left(self.buckets, value)] += 1
        self.sums[key] += value


def _format(names: tuple[str, ...], key: Key, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = [*zip(names, ("" if v is None else str(v) for v in key), strict=True), *extra]
    if not pairs:
        return ""
    escaped = (
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in pairs
    )
    return "{" + ",".join(escaped) + "}"


class Metrics:
    def __init__(self) -> None:
        self.requests = Family("gatepass_requests_total", "Proxied requests.", ("model", "status"))
        self.errors = Family("gatepass_errors_total", "Failed requests by error type.", ("type",))
        self.tokens = Family(
            "gatepass_tokens_total", "Tokens by model and kind.", ("model", "kind")
        )
        self.cost = Family("gatepass_cost_usd_total", "Cost in USD by model.", ("model",))
        self.upstream_failures = Family(
            "gatepass_upstream_failures_total",
            "Upstream 5xx/529 answers and failures by provider.",
            ("provider", "status"),
        )
        self.disconnects = Family(
            "gatepass_client_disconnects_total", "Requests the client abandoned.", ()
        )
        self.disconnects.values[()] = 0
        self.latency = Histogram(
            "gatepass_request_duration_seconds", "Whole-request latency.", LATENCY_BUCKETS
        )
        self.ttfb = Histogram(
            "gatepass_time_to_first_byte_seconds", "Time to the first byte.", TTFB_BUCKETS
        )

    def observe(self, rows: Iterable[dict[str, Any]]) -> None:
        """Count a batch of request-log rows (called by the log writer after storing them)."""
        requests, tokens, cost = self.requests.values, self.tokens.values, self.cost.values
        for row in rows:
            model, status = row.get("model"), row.get("status")
            requests[model, status] += 1
            error_type = row.get("error_type")
            if error_type:
                self.errors.values[error_type,] += 1
            if status in UPSTREAM_FAILURE_STATUSES:
                self.upstream_failures.values[row.get("provider"), status] += 1
            if row.get("client_disconnected"):
                self.disconnects.values[()] += 1
            for field, kind in TOKEN_KINDS:
                count = row.get(field)
                if count:
                    tokens[model, kind] += int(count)
            cost_usd = row.get("cost_usd")
            if cost_usd:
                cost[model,] += float(cost_usd)
            latency_ms = row.get("latency_ms")
            if latency_ms is not None:
                self.latency.observe((model,), latency_ms / 1000)
            ttfb_ms = row.get("ttfb_ms")
            if ttfb_ms is not None:
                self.ttfb.observe((model,), ttfb_ms / 1000)

    def render(self, gauges: dict[str, tuple[str, Callable[[], float]]]) -> str:
        """Prometheus text exposition format 0.0.4."""
        out: list[str] = []
        for family in (
            self.requests,
            self.errors,
            self.tokens,
            self.cost,
            self.upstream_failures,
            self.disconnects,
        ):
            out.append(f"# HELP {family.name} {family.help_text}")
            out.append(f"# TYPE {family.name} counter")
            for key, value in sorted(family.values.items(), key=_sort_key):
                out.append(f"{family.name}{_format(family.labels, key)} {value}")
        for histogram in (self.latency, self.ttfb):
            name = histogram.name
            out.append(f"# HELP {name} {histogram.help_text}")
            out.append(f"# TYPE {name} histogram")
            for key, counts in sorted(histogram.counts.items(), key=_sort_key):
                cumulative = list(accumulate(counts))
                bounds = [*map(str, histogram.buckets), "+Inf"]
                for bound, count in zip(bounds, cumulative, strict=True):
                    labels = _format(histogram.labels, key, (("le", bound),))
                    out.append(f"{name}_bucket{labels} {count}")
                labels = _format(histogram.labels, key)
                out.append(f"{name}_sum{labels} {histogram.sums[key]}")
                out.append(f"{name}_count{labels} {cumulative[-1]}")
        for name, (help_text, read) in gauges.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} gauge")
            out.append(f"{name} {read()}")
        return "\n".join(out) + "\n"


def _sort_key(item: tuple[Key, Any]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in item[0])
