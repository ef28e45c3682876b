"""The admin API's OpenAPI 3.1 document, built from the same table as its routes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gatepass.admin.api import Endpoint

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message", "details"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "invalid_request",
                        "authentication_required",
                        "forbidden",
                        "not_found",
                        "method_not_allowed",
                        "conflict",
                    ],
                },
                "message": {"type": "string"},
                "details": {"type": ["object", "null"]},
            },
        }
    },
}


def openapi_path(path: str) -> str:
    """Starlette's `{name:path}` → OpenAPI's `{name}`."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def document(endpoints: Sequence[Endpoint], prefix: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for endpoint in endpoints:
        path = openapi_path(prefix + endpoint.path)
        operation: dict[str, Any] = {
            "operationId": endpoint.handler.__name__,
            "summary": endpoint.summary,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"\{(\w+)\}", path)
            ]
            + [
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in endpoint.query
            ],
            "responses": {
                "200" if endpoint.method in ("GET", "PATCH") else "default": {"description": "OK"},
                "400": {"description": "Invalid request", **error},
                "401": {"description": "No valid admin credential", **error},
                "403": {"description": "Not an admin, read-only, or CSRF", **error},
                "404": {"description": "Not found", **error},
            },
        }
        if endpoint.body is not None:
            name = endpoint.body.__name__
            schemas[name] = endpoint.body.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            for sub, schema in schemas[name].pop("$defs", {}).items():
                schemas[sub] = schema
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                },
            }
        paths.setdefault(path, {})[endpoint.method.lower()] = operation
    paths[prefix + "/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {"200": {"description": "OK"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gatepass admin API", "version": "1"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer"},
                "adminSession": {"type": "apiKey", "in": "cookie", "name": "gatepass_admin"},
            },
        },
        "security": [{"adminToken": []}, {"adminSession": []}],
        "paths": paths,
    }
