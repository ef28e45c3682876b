"""One admin error envelope, whatever went wrong; and the OpenAPI document covers every route."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from gatepass.admin.api import ENDPOINTS, PREFIX, AdminApi
from gatepass.admin.auth import AdminAuth
from gatepass.admin.openapi import openapi_path
from tests.conftest import Harness
from tests.integration.admin_support import api, make_token

ERROR_TYPES = {
    "invalid_request",
    "authentication_required",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
}


def assert_envelope(body: Any) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "details"}
    assert body["error"]["type"] in ERROR_TYPES
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert body["error"]["details"] is None or isinstance(body["error"]["details"], dict)


def test_every_admin_error_has_the_same_envelope(gatepass: Harness) -> None:
    token = make_token(gatepass)
    read_only = make_token(gatepass, "ro", read_only=True)
    with api(gatepass, token) as http, api(gatepass, read_only) as reader, api(gatepass) as anon:
        responses = {
            401: anon.get("/keys"),
            403: reader.post("/keys", json={"name": "x", "models": "*"}),
            404: http.get("/keys/nope"),
            405: http.put("/keys"),
            409: http.post("/keys", json={"name": "dup", "models": "*"}) and http.post(
                "/keys", json={"name": "dup", "models": "*"}
            ),
            400: http.post("/keys", content=b"{not json", headers={"content-type": "application/json"}),
        }  # fmt: skip
        unknown_field = http.post("/keys", json={"name": "x", "models": "*", "secret": "mine"})
        unknown_route = http.get("/nothing/here")
        bad_model = http.post("/keys", json={"name": "y", "models": ["no-such-model"]})
    for status, response in responses.items():
        assert response.status_code == status, (status, response.text)
        assert_envelope(response.json())
    assert unknown_field.status_code == 400
    assert_envelope(unknown_field.json())
    assert unknown_field.json()["error"]["details"]["errors"][0]["field"] == "secret"
    assert unknown_route.status_code == 404
    assert_envelope(unknown_route.json())
    assert bad_model.status_code == 400
    assert "no-such-model" in bad_model.json()["error"]["message"]


def test_unknown_routes_ask_for_credentials_before_saying_not_found(gatepass: Harness) -> None:
    with api(gatepass) as anon:
        response = anon.get("/nothing/here")
    assert response.status_code == 401
    assert_envelope(response.json())


def test_openapi_document_lists_every_admin_api_route_and_method(gatepass: Harness) -> None:
    token = make_token(gatepass, read_only=True)
    with api(gatepass, token) as http:
        document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    routes = AdminApi(gatepass.gateway, AdminAuth(gatepass.gateway)).routes()
    served = {
        openapi_path(route.path)
        for route in routes
        if isinstance(route, Route) and "{rest" not in route.path
    }
    assert served == set(document["paths"])
    for endpoint in ENDPOINTS:
        path = openapi_path(PREFIX + endpoint.path)
        operation = document["paths"][path][endpoint.method.lower()]
        assert operation["summary"]
        if endpoint.body is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"]
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
