"""Claude Code's optional gateway endpoints: managed settings (ETag/304) and OTLP sinks."""

from __future__ import annotations

import hashlib
import json

import httpx2

from gatepass import manage
from tests.conftest import Harness

SETTINGS = {
    "env": {"CLAUDE_CODE_GATEWAY_HINT_HEADERS": "1"},
    "permissions": {"deny": ["Bash(rm:*)"]},
    "availableModels": ["claude-haiku-4-5"],
}


def expected_checksum(settings: dict[str, object]) -> str:
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def get_settings(harness: Harness, key: str, **headers: str) -> httpx2.Response:
    return httpx2.get(
        harness.base + "/managed/settings", headers={"authorization": f"Bearer {key}", **headers}
    )


def test_no_managed_settings_is_404(gatepass: Harness) -> None:
    key = gatepass.create_key("plain")
    response = get_settings(gatepass, key)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_managed_settings_are_served_with_the_clients_checksum_and_etag(gatepass: Harness) -> None:
    key = gatepass.create_key("managed")
    gatepass.store(lambda s: manage.update_key(s, name="managed", managed_settings=SETTINGS))
    gatepass.gateway.keys.invalidate()
    response = get_settings(gatepass, key)
    assert response.status_code == 200
    document = response.json()
    assert document["settings"] == SETTINGS
    assert document["checksum"] == expected_checksum(SETTINGS)
    assert response.headers["etag"] == f'"{document["checksum"]}"'
    assert document["uuid"] == get_settings(gatepass, key).json()["uuid"]

    not_modified = get_settings(gatepass, key, **{"if-none-match": response.headers["etag"]})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    stale = get_settings(gatepass, key, **{"if-none-match": '"sha256:0000"'})
    assert stale.status_code == 200
    star = get_settings(gatepass, key, **{"if-none-match": "*"})
    assert star.status_code == 200


def test_managed_settings_need_a_valid_credential(gatepass: Harness) -> None:
    assert httpx2.get(gatepass.base + "/managed/settings").status_code == 401
    assert get_settings(gatepass, "gp-wrong").status_code == 401


def test_telemetry_is_accepted_and_discarded(gatepass: Harness) -> None:
    key = gatepass.create_key("otel")
    for signal in ("metrics", "logs", "traces"):
        protobuf = httpx2.post(
            gatepass.base + f"/v1/{signal}",
            headers={"authorization": f"Bearer {key}", "content-type": "application/x-protobuf"},
            content=b"\x0a\x00",
        )
        assert protobuf.status_code == 200
        as_json = httpx2.post(
            gatepass.base + f"/v1/{signal}",
            headers={"authorization": f"Bearer {key}"},
            json={"resourceSpans": []},
        )
        assert as_json.status_code == 200
        assert as_json.json() == {}
    assert gatepass.fake.requests == []
    assert httpx2.post(gatepass.base + "/v1/metrics", json={}).status_code == 401
