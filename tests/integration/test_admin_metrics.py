"""`/metrics` in Prometheus text format, counted from request-log rows; JSON process logs."""

from __future__ import annotations

import json
import logging

import httpx2

from gatepass.logs.metrics import Metrics
from gatepass.logs.structured import JsonFormatter
from tests.conftest import GatepassFactory, Harness


def send(harness: Harness, secret: str, model: str) -> httpx2.Response:
    body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    return httpx2.post(harness.base + "/v1/messages", json=body, headers=headers, timeout=30)


def sample(text: str, prefix: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(prefix + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_metrics_count_requests_tokens_cost_latency_and_errors(gatepass: Harness) -> None:
    secret = gatepass.create_key("metered", models="claude-haiku-4-5")
    assert send(gatepass, secret, "claude-haiku-4-5").status_code == 200
    assert send(gatepass, secret, "claude-haiku-4-5").status_code == 200
    gatepass.wait_for_logs(2)
    response = httpx2.get(gatepass.url + "/metrics")
    text = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    ok = 'gatepass_requests_total{model="claude-haiku-4-5",status="200"}'
    assert sample(text, ok) == 2
    assert sample(text, 'gatepass_tokens_total{model="claude-haiku-4-5",kind="output"}') > 0
    assert sample(text, 'gatepass_cost_usd_total{model="claude-haiku-4-5"}') > 0
    assert sample(text, 'gatepass_request_duration_seconds_count{model="claude-haiku-4-5"}') == 2
    inf = 'gatepass_request_duration_seconds_bucket{model="claude-haiku-4-5",le="+Inf"}'
    assert sample(text, inf) == 2
    assert "# TYPE gatepass_time_to_first_byte_seconds histogram" in text
    assert sample(text, "gatepass_requests_in_progress") == 0
    assert "# TYPE gatepass_upstream_failures_total counter" in text


def test_upstream_failures_and_error_types_are_counted() -> None:
    metrics = Metrics()
    metrics.observe(
        [
            {"model": "m", "provider": "p", "status": 529, "error_type": "overloaded_error"},
            {"model": "m", "provider": "p", "status": 401, "error_type": "authentication_error"},
        ]
    )
    text = metrics.render({})
    assert sample(text, 'gatepass_upstream_failures_total{provider="p",status="529"}') == 1
    assert sample(text, 'gatepass_errors_total{type="authentication_error"}') == 1


def test_metrics_need_the_token_when_one_is_configured(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(metrics={"token": "scrape-secret-0123"})
    missing = httpx2.get(harness.url + "/metrics")
    wrong = httpx2.get(harness.url + "/metrics", headers={"authorization": "Bearer nope"})
    right = httpx2.get(
        harness.url + "/metrics", headers={"authorization": "Bearer scrape-secret-0123"}
    )
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "gatepass.proxy", logging.WARNING, __file__, 1, "slow %s", ("x",), None
    )
    record.request_id = "req_gp_123"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "slow x"
    assert line["level"] == "warning"
    assert line["request_id"] == "req_gp_123"
    assert line["logger"] == "gatepass.proxy"


def test_log_lines_written_while_handling_a_request_carry_its_id() -> None:
    import contextvars
    import io

    from gatepass.logs.structured import REQUEST_ID, RequestIdFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gatepass.test-structured")
    logger.addHandler(handler)
    logger.propagate = False
    try:

        def handle_request() -> None:
            REQUEST_ID.set("req_gp_abc")
            logger.warning("upstream slow")

        contextvars.copy_context().run(handle_request)
        logger.warning("outside any request")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "req_gp_abc"
    assert "request_id" not in outside
