"""Provider metadata (OIDC Discovery 1.0 §3, RFC 8414) and the JWKS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp_dev.authorize import SUPPORTED_SCOPES
from idp_dev.keys import KeyRing
from idp_dev.provider import Provider
from idp_dev.switches import WRONG_ISSUER


def metadata(provider: Provider) -> dict[str, Any]:
    issuer = provider.issuer
    return {
        "issuer": WRONG_ISSUER if provider.switches.discovery_issuer_mismatch else issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "end_session_endpoint": f"{issuer}/logout",
        "revocation_endpoint": f"{issuer}/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(KeyRing.algs),
        "scopes_supported": list(SUPPORTED_SCOPES),
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "azp",
            "at_hash",
            "name",
            "email",
            "email_verified",
            provider.config.groups_claim,
        ],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": True,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


@dataclass
class Discovery:
    provider: Provider

    async def configuration(self, request: Request) -> Response:
        return JSONResponse(metadata(self.provider))

    async def jwks(self, request: Request) -> Response:
        with self.provider.lock:
            body = self.provider.keys.jwks()
        return JSONResponse(body, headers={"Cache-Control": "max-age=60"})
