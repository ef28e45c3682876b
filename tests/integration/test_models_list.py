"""`GET /anthropic/v1/models`: Anthropic's shape, the caller's models only, paginated."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from tests.conftest import Harness


def list_models(harness: Harness, key: str, query: str = "") -> httpx2.Response:
    return httpx2.get(harness.base + "/v1/models" + query, headers={"x-api-key": key})


def test_models_are_filtered_by_the_allow_list(gatepass: Harness) -> None:
    key = gatepass.create_key("two", models="claude-haiku-4-5,sonnet")
    payload = list_models(gatepass, key).json()
    assert [m["id"] for m in payload["data"]] == ["claude-haiku-4-5", "claude-sonnet-latest"]
    assert payload["has_more"] is False
    assert payload["first_id"] == "claude-haiku-4-5"
    assert payload["last_id"] == "claude-sonnet-latest"
    model = payload["data"][1]
    assert model == {
        "type": "model",
        "id": "claude-sonnet-latest",
        "display_name": "Claude Sonnet (latest)",
        "created_at": model["created_at"],
    }
    assert model["created_at"].endswith("Z")


def test_models_paginate_with_limit_after_and_before(gatepass: Harness) -> None:
    key = gatepass.create_key("all")
    everything = [m["id"] for m in list_models(gatepass, key).json()["data"]]
    assert len(everything) == 4
    first = list_models(gatepass, key, "?limit=2").json()
    assert [m["id"] for m in first["data"]] == everything[:2]
    assert first["has_more"] is True
    second = list_models(gatepass, key, f"?limit=2&after_id={first['last_id']}").json()
    assert [m["id"] for m in second["data"]] == everything[2:]
    assert second["has_more"] is False
    back = list_models(gatepass, key, f"?limit=1&before_id={second['first_id']}").json()
    assert [m["id"] for m in back["data"]] == [everything[1]]
    assert back["has_more"] is True


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=1001", "?limit=abc", "?after_id=nope", "?after_id=a&before_id=b"]
)
def test_bad_pagination_is_400(gatepass: Harness, query: str) -> None:
    key = gatepass.create_key("all")
    response = list_models(gatepass, key, query)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_models_need_the_same_authentication_as_messages(gatepass: Harness) -> None:
    assert httpx2.get(gatepass.base + "/v1/models").status_code == 401
    key = gatepass.create_key("all")
    bearer = httpx2.get(
        gatepass.base + "/v1/models?limit=1000", headers={"authorization": f"Bearer {key}"}
    )
    assert bearer.status_code == 200


def test_sdk_lists_and_retrieves_models(gatepass: Harness) -> None:
    key = gatepass.create_key("haiku", models="claude-haiku-4-5")
    client = anthropic.Anthropic(base_url=gatepass.base, api_key=key, max_retries=0)
    assert [m.id for m in client.models.list()] == ["claude-haiku-4-5"]
    assert client.models.retrieve("claude-haiku-4-5").display_name == "claude-haiku-4-5"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-opus-4-7")
