"""OpenID Provider metadata (OIDC Discovery §3, RFC 8414 §2), the device-flow authorization
server metadata (RFC 8414, the Claude apps gateway protocol's "Discovery") and the JWKS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gatepass.oauth.device import DEVICE_GRANT
from gatepass.oauth.keys import ALGORITHM, SigningKeys

SCOPES = ("openid", "profile", "email", "offline_access")
CLAIMS = (
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "sid",
    "email",
    "name",
    "groups",
    "gatepass_key_id",
)


def provider_metadata(issuer: str) -> dict[str, Any]:
    """The discovery document; every endpoint is on the issuer's own origin."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        "scopes_supported": list(SCOPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "claims_supported": list(CLAIMS),
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
    }


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    """What Claude Code's `/login` and Desktop without OIDC settings read: the device flow.

    Absolute URLs on the issuer's origin (the clients use only same-origin ones). No
    `authorization_endpoint`: the protocol leaves it out on purpose; Desktop's OIDC mode reads
    `/.well-known/openid-configuration` instead.
    """
    return {
        "issuer": issuer,
        "device_authorization_endpoint": f"{issuer}/oauth/device_authorization",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "grant_types_supported": [DEVICE_GRANT, "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
    }


@dataclass
class AuthorizationServerEndpoint:
    issuer: str

    async def handle(self, request: Request) -> Response:
        # Served directly: the clients follow no redirect.
        return _public_json(authorization_server_metadata(self.issuer), max_age=300)


@dataclass
class DiscoveryEndpoint:
    issuer: str

    async def handle(self, request: Request) -> Response:
        # Served directly: Claude Desktop's fetch refuses redirects.
        return _public_json(provider_metadata(self.issuer), max_age=300)


@dataclass
class JwksEndpoint:
    keys: SigningKeys

    async def handle(self, request: Request) -> Response:
        # Short cache: a key rotated in signs at once, so verifiers must see it soon.
        return _public_json(self.keys.jwks(), max_age=60)


def _public_json(body: object, *, max_age: int) -> Response:
    headers = {"cache-control": f"public, max-age={max_age}"}  # seconds
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
