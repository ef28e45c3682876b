"""CORS: off unless origins are configured; preflights answered for browser SDK use."""

from __future__ import annotations

import httpx2

from tests.conftest import GatepassFactory

PREFLIGHT = {"access-control-request-method": "POST"}


def test_cors_is_off_by_default(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass()
    response = httpx2.options(
        harness.base + "/v1/messages",
        headers={"origin": "https://app.example", **PREFLIGHT},
    )
    assert "access-control-allow-origin" not in response.headers


def test_preflight_from_an_allowed_origin_gets_the_default_headers(
    make_gatepass: GatepassFactory,
) -> None:
    harness = make_gatepass(cors={"allow_origins": ["https://app.example"]})
    response = httpx2.options(
        harness.base + "/v1/messages",
        headers={
            "origin": "https://app.example",
            **PREFLIGHT,
            "access-control-request-headers": "x-api-key, x-stainless-timeout, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {
        "content-type",
        "authorization",
        "x-requested-with",
        "x-stainless-timeout",
        "x-api-key",
    } <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]


def test_preflight_from_another_origin_is_refused(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(cors={"allow_origins": ["https://app.example"]})
    response = httpx2.options(
        harness.base + "/v1/messages",
        headers={"origin": "https://evil.example", **PREFLIGHT},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_preflight_asking_for_an_unlisted_header_is_refused(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(cors={"allow_origins": ["https://app.example"]})
    response = httpx2.options(
        harness.base + "/v1/messages",
        headers={
            "origin": "https://app.example",
            **PREFLIGHT,
            "access-control-request-headers": "anthropic-version",
        },
    )
    assert response.status_code == 400


def test_wildcard_origins_and_headers_answer_any_browser_client(
    make_gatepass: GatepassFactory,
) -> None:
    harness = make_gatepass(cors={"allow_origins": ["*"], "allow_headers": ["*"]})
    asked = "x-api-key, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, x-stainless-os"
    response = httpx2.options(
        harness.base + "/v1/messages",
        headers={
            "origin": "https://any.example",
            **PREFLIGHT,
            "access-control-request-headers": asked,
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"].lower() == asked


def test_actual_responses_expose_request_id_to_the_browser(make_gatepass: GatepassFactory) -> None:
    harness = make_gatepass(cors={"allow_origins": ["https://app.example"]})
    key = harness.create_key("all")
    response = httpx2.post(
        harness.base + "/v1/messages",
        headers={"origin": "https://app.example", "x-api-key": key},
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "request-id" in response.headers["access-control-expose-headers"]
