"""The admin REST API with admin tokens: every resource, permissions, secrets, audit, paging."""

from __future__ import annotations

import json

import pytest

from gatepass.manage import admin_tokens
from tests.conftest import UPSTREAM_KEY, Harness
from tests.integration.admin_support import api, audit, error_of, make_token

RESOURCES = ("keys", "mappings", "idps", "providers", "models", "clients", "users", "audit", "logs")


@pytest.mark.parametrize("resource", RESOURCES)
def test_every_resource_lists_with_pagination_for_a_read_only_token(
    gatepass: Harness, resource: str
) -> None:
    token = make_token(gatepass, read_only=True)
    with api(gatepass, token) as http:
        response = http.get(f"/{resource}", params={"limit": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["data"], list)
    assert body["pagination"]["limit"] == 2
    assert response.headers["cache-control"] == "no-store"


def test_a_created_key_secret_is_returned_once_and_never_again(gatepass: Harness) -> None:
    token = make_token(gatepass)
    with api(gatepass, token) as http:
        created = http.post(
            "/keys",
            json={"name": "team-a", "models": ["claude-haiku-4-5"], "limits": {"rpm": 60}},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("gp-")
        assert created.json()["limits"]["rpm"] == 60
        listed = http.get("/keys").text
        one = http.get("/keys/team-a").text
        events = http.get("/audit").text
        exported = http.get("/audit", params={"format": "jsonl"}).text
    for text in (listed, one, events, exported):
        assert secret not in text
        assert "secret_hash" not in text
    assert "team-a" in listed


def test_the_new_key_works_through_the_proxy_and_revoking_it_through_the_api_stops_it(
    gatepass: Harness,
) -> None:
    token = make_token(gatepass)
    with api(gatepass, token) as http:
        secret = http.post("/keys", json={"name": "svc", "models": "*"}).json()["secret"]
        import httpx2

        request = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [
            {"role": "user", "content": "hi"}
        ]}  # fmt: skip
        headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
        first = httpx2.post(gatepass.base + "/v1/messages", json=request, headers=headers)
        assert first.status_code == 200, first.text
        revoked = http.post("/keys/svc/revoke")
        assert revoked.json()["status"] == "revoked"
        second = httpx2.post(gatepass.base + "/v1/messages", json=request, headers=headers)
    assert second.status_code == 401


def test_rotate_returns_a_new_secret_once_and_key_updates_change_the_allow_list(
    gatepass: Harness,
) -> None:
    token = make_token(gatepass)
    with api(gatepass, token) as http:
        old = http.post("/keys", json={"name": "k", "models": "*"}).json()["secret"]
        rotated = http.post("/keys/k/rotate").json()
        assert rotated["secret"] != old
        updated = http.patch("/keys/k", json={"models": ["claude-opus-4-7"]})
        assert updated.json()["models"] == ["claude-opus-4-7"]
        assert "secret" not in updated.json()


def test_provider_api_keys_and_client_secrets_are_never_returned(gatepass: Harness) -> None:
    token = make_token(gatepass)
    provider_key = "sk-ant-very-secret-provider-key-42"
    with api(gatepass, token) as http:
        created = http.post(
            "/providers",
            json={
                "name": "other",
                "base_url": "https://api.example.com",
                "api_key": provider_key,
                "extra_headers": {"x-secret-header": "hdr-secret-value"},
            },
        )
        assert created.status_code == 201, created.text
        client = http.post(
            "/clients",
            json={
                "client_id": "tool",
                "redirect_uris": ["https://tool.example/cb"],
                "public": False,
            },
        )
        assert client.status_code == 201, client.text
        client_secret = client.json()["secret"]  # a confidential client's secret, once
        texts = [
            created.text,
            http.get("/providers").text,
            http.get("/clients").text,
            http.get("/audit", params={"format": "jsonl"}).text,
        ]
    for text in texts:
        assert provider_key not in text
        assert UPSTREAM_KEY not in text
        assert "hdr-secret-value" not in text
        assert client_secret not in text
        assert "encrypted" not in text


def test_models_idps_clients_and_providers_are_created_and_removed(gatepass: Harness) -> None:
    token = make_token(gatepass)
    with api(gatepass, token) as http:
        assert (
            http.post(
                "/providers",
                json={"name": "p2", "base_url": "https://p2.example.com", "api_key": "sk-x"},
            ).status_code
            == 201
        )
        made = http.post("/models", json={"id": "claude-x-1", "provider": "p2", "aliases": ["x"]})
        assert made.status_code == 201, made.text
        assert made.json() == {
            "id": "claude-x-1", "provider": "p2", "upstream_model": None,
            "display_name": None, "aliases": ["x"],
        }  # fmt: skip
        busy = http.delete("/providers/p2")
        assert busy.status_code == 409
        assert http.delete("/models/claude-x-1").status_code == 204
        assert http.delete("/providers/p2").status_code == 204
        idp = http.post(
            "/idps",
            json={"name": "okta", "issuer": "https://login.corp.example", "client_id": "gp",
                  "client_secret": "okta-secret-value", "allowed_domains": ["corp.example"]},
        )  # fmt: skip
        assert idp.status_code == 201, idp.text
        assert "okta-secret-value" not in http.get("/idps").text
        assert (
            http.post(
                "/clients",
                json={"client_id": "desk", "redirect_uris": ["http://127.0.0.1/callback"]},
            ).status_code
            == 201
        )
        assert http.delete("/clients/desk").status_code == 204
        assert http.delete("/idps/okta").status_code == 204
        assert http.get("/idps").json()["data"] == []
    actions = [e.action for e in audit(gatepass)]
    for action in (
        "provider.create", "model.create", "model.delete", "provider.delete", "idp.create",
        "client.create", "client.delete", "idp.delete",
    ):  # fmt: skip
        assert action in actions


def test_mappings_are_added_reprioritised_and_removed_with_audit_events_by_the_token(
    gatepass: Harness,
) -> None:
    token = make_token(gatepass, "automation")
    with api(gatepass, token) as http:
        http.post("/keys", json={"name": "eng", "models": "*"})
        http.post(
            "/idps",
            json={"name": "corp", "issuer": "https://login.corp.example", "client_id": "gp"},
        )
        made = http.post(
            "/mappings", json={"idp": "corp", "group": "engineering", "key": "eng", "priority": 5}
        )
        assert made.status_code == 201, made.text
        mapping = made.json()
        assert mapping["group"] == "engineering"
        assert mapping["key"] == "eng"
        moved = http.patch(f"/mappings/{mapping['id']}", json={"priority": 50})
        assert moved.json()["priority"] == 50
        assert http.delete(f"/mappings/{mapping['id']}").status_code == 204
        assert http.delete(f"/mappings/{mapping['id']}").status_code == 404
    events = [e for e in audit(gatepass) if e.action.startswith("mapping.")]
    assert [e.action for e in events] == ["mapping.create", "mapping.update", "mapping.delete"]
    assert {e.actor for e in events} == {"token:automation"}
    update = events[1]
    assert update.detail["before"]["priority"] == 5
    assert update.detail["after"]["priority"] == 50


def test_users_are_disabled_and_enabled_through_the_api(gatepass: Harness) -> None:
    token = make_token(gatepass)
    with api(gatepass, token) as http:
        missing = http.post("/users/nobody@corp.example/disable")
    assert missing.status_code == 404
    assert error_of(missing)["type"] == "not_found"


def test_a_read_only_token_cannot_write(gatepass: Harness) -> None:
    token = make_token(gatepass, read_only=True)
    with api(gatepass, token) as http:
        response = http.post("/keys", json={"name": "nope", "models": "*"})
        deleted = http.delete("/models/claude-haiku-4-5")
    assert response.status_code == 403
    assert error_of(response)["type"] == "forbidden"
    assert deleted.status_code == 403
    assert not [e for e in audit(gatepass) if e.action == "key.create" and e.target == "nope"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer gpa-not-a-real-token", "Bearer gp-a-virtual-key", "Basic dXNlcjpwYXNz"],
)
def test_missing_or_invalid_credentials_get_401(
    gatepass: Harness, authorization: str | None
) -> None:
    with api(gatepass) as http:
        headers = {"authorization": authorization} if authorization else {}
        response = http.get("/keys", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["type"] == "authentication_required"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_admin_token_gets_401(gatepass: Harness) -> None:
    token = make_token(gatepass, "temp")
    with api(gatepass, token) as http:
        assert http.get("/keys").status_code == 200
        gatepass.store(lambda s: admin_tokens.revoke_admin_token(s, name="temp"))
        response = http.get("/keys")
    assert response.status_code == 401
    actions = [e.action for e in audit(gatepass)]
    assert "admin_token.create" in actions
    assert "admin_token.revoke" in actions


def test_pagination_walks_every_key_once(gatepass: Harness) -> None:
    for n in range(5):
        gatepass.create_key(f"page-{n}")
    token = make_token(gatepass)
    seen: list[str] = []
    offset: int | None = 0
    with api(gatepass, token) as http:
        while offset is not None:
            body = http.get("/keys", params={"limit": 2, "offset": offset}).json()
            seen.extend(k["name"] for k in body["data"])
            assert body["pagination"]["total"] == 5
            offset = body["pagination"]["next_offset"]
        bad = http.get("/keys", params={"limit": 0})
    assert sorted(seen) == [f"page-{n}" for n in range(5)]
    assert bad.status_code == 400


def test_audit_filters_by_action_actor_target_and_time_and_exports_json_lines(
    gatepass: Harness,
) -> None:
    token = make_token(gatepass, "auditor")
    with api(gatepass, token) as http:
        http.post("/keys", json={"name": "a1", "models": "*"})
        http.post("/keys", json={"name": "a2", "models": "*"})
        http.post("/keys/a1/revoke")
        by_action = http.get("/audit", params={"action": "key.revoke"}).json()["data"]
        by_prefix = http.get("/audit", params={"action": "key.", "actor": "token:auditor"})
        by_target = http.get("/audit", params={"target": "a2"}).json()["data"]
        future = http.get("/audit", params={"since": "2999-01-01"}).json()["data"]
        past = http.get("/audit", params={"until": "2000-01-01"}).json()["data"]
        bad_time = http.get("/audit", params={"since": "yesterday-ish"})
        exported = http.get("/audit", params={"format": "jsonl", "action": "key."})
    assert [e["target"] for e in by_action] == ["a1"]
    assert {e["action"] for e in by_prefix.json()["data"]} == {"key.create", "key.revoke"}
    assert [e["action"] for e in by_target] == ["key.create"]
    assert future == []
    assert past == []
    assert bad_time.status_code == 400
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [(e["action"], e["target"]) for e in lines] == [
        ("key.create", "a1"), ("key.create", "a2"), ("key.revoke", "a1"),
    ]  # fmt: skip
    assert exported.headers["content-type"].startswith("application/jsonl")


def test_logs_filter_and_total_requests_tokens_and_cost(gatepass: Harness) -> None:
    import httpx2

    secret = gatepass.create_key("logged")
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    for model in ("claude-haiku-4-5", "claude-haiku-4-5", "claude-opus-4-7"):
        body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        assert httpx2.post(gatepass.base + "/v1/messages", json=body, headers=headers).is_success
    gatepass.wait_for_logs(3)
    token = make_token(gatepass, read_only=True)
    with api(gatepass, token) as http:
        haiku = http.get("/logs", params={"model": "claude-haiku-4-5", "key": "logged"}).json()
        one = http.get(f"/logs/{haiku['data'][0]['id']}").json()
        none = http.get("/logs", params={"status": 500}).json()
        missing = http.get("/logs/999999")
    assert haiku["totals"]["requests"] == 2
    assert haiku["totals"]["output_tokens"] > 0
    assert haiku["totals"]["cost_usd"] > 0
    assert {row["model"] for row in haiku["data"]} == {"claude-haiku-4-5"}
    assert one["key_name"] == "logged"
    assert none["totals"]["requests"] == 0
    assert missing.status_code == 404
