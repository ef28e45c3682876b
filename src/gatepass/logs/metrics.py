"""Prometheus metrics derived from request-log rows, counted by the log writer.

The hot path does nothing for metrics: the writer's batch goes through `observe` after it is
stored, and gauges (requests in progress) are read at scrape time. Counts are per process,
as Prometheus expects (it sums replicas); they lag requests by one flush interval.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)  # seconds
TTFB_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)  # seconds
UPSTREAM_FAILURE_STATUSES = frozenset({500, 502, 503, 504, 529})

Labels = tuple[tuple[str, str], ...]


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts: dict[Labels, list[int]] = defaultdict(lambda: [0] * len(buckets))
        self.sums: dict[Labels, float] = defaultdict(float)
        self.totals: dict[Labels, int] = defaultdict(int)

    def observe(self, labels: Labels, value: float) -> None:
        counts = self.counts[labels]
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        self.sums[labels] += value
        self.totals[labels] += 1


def _labels(**values: Any) -> Labels:
    return tuple((k, "" if v is None else str(v)) for k, v in values.items())


def _format(labels: Labels, extra: Labels = ()) -> str:
    pairs = [*labels, *extra]
    if not pairs:
        return ""
    escaped = (
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in pairs
    )
    return "{" + ",".join(escaped) + "}"


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[Labels, int] = defaultdict(int)
        self.errors: dict[Labels, int] = defaultdict(int)
        self.tokens: dict[Labels, int] = defaultdict(int)
        self.cost: dict[Labels, float] = defaultdict(float)
        self.upstream_failures: dict[Labels, int] = defaultdict(int)
        self.disconnects = 0
        self.latency = Histogram(LATENCY_BUCKETS)
        self.ttfb = Histogram(TTFB_BUCKETS)

    def observe(self, rows: Iterable[dict[str, Any]]) -> None:
        """Count a batch of request-log rows (called by the log writer after storing them)."""
        for row in rows:
            model, provider, status = row.get("model"), row.get("provider"), row.get("status")
            self.requests[_labels(model=model, status=status)] += 1
            if row.get("error_type"):
                self.errors[_labels(type=row["error_type"])] += 1
            if status in UPSTREAM_FAILURE_STATUSES:
                self.upstream_failures[_labels(provider=provider, status=status)] += 1
            if row.get("client_disconnected"):
                self.disconnects += 1
            for kind in ("input", "output", "cache_creation_input", "cache_read_input"):
                count = row.get(f"{kind}_tokens") or 0
                if count:
                    self.tokens[_labels(model=model, kind=kind)] += int(count)
            if row.get("cost_usd"):
                self.cost[_labels(model=model)] += float(row["cost_usd"])
            if row.get("latency_ms") is not None:
                self.latency.observe(_labels(model=model), float(row["latency_ms"]) / 1000)
            if row.get("ttfb_ms") is not None:
                self.ttfb.observe(_labels(model=model), float(row["ttfb_ms"]) / 1000)

    def render(self, gauges: dict[str, tuple[str, Callable[[], float]]]) -> str:
        """Prometheus text exposition format 0.0.4."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: dict[Labels, Any]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in sorted(samples.items()):
                out.append(f"{name}{_format(labels)} {value}")

        family("gatepass_requests_total", "counter", "Proxied requests.", self.requests)
        family("gatepass_errors_total", "counter", "Failed requests by error type.", self.errors)
        family("gatepass_tokens_total", "counter", "Tokens by model and kind.", self.tokens)
        family("gatepass_cost_usd_total", "counter", "Cost in USD by model.", self.cost)
        family(
            "gatepass_upstream_failures_total",
            "counter",
            "Upstream 5xx/529 answers and failures by provider.",
            self.upstream_failures,
        )
        family(
            "gatepass_client_disconnects_total",
            "counter",
            "Requests the client abandoned.",
            {(): self.disconnects},
        )
        for name, help_text, histogram in (
            ("gatepass_request_duration_seconds", "Whole-request latency.", self.latency),
            ("gatepass_time_to_first_byte_seconds", "Time to the first byte.", self.ttfb),
        ):
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} histogram")
            for labels in sorted(histogram.totals):
                for bound, count in zip(histogram.buckets, histogram.counts[labels], strict=True):
                    out.append(f"{name}_bucket{_format(labels, (('le', str(bound)),))} {count}")
                total = histogram.totals[labels]
                out.append(f"{name}_bucket{_format(labels, (('le', '+Inf'),))} {total}")
                out.append(f"{name}_sum{_format(labels)} {histogram.sums[labels]}")
                out.append(f"{name}_count{_format(labels)} {total}")
        for name, (help_text, read) in gauges.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} gauge")
            out.append(f"{name} {read()}")
        return "\n".join(out) + "\n"
