"""Gatepass as an OAuth 2.0 / OpenID Connect issuer toward its clients (Claude Desktop, …)."""

from gatepass.oauth.keys import rotate_signing_key
from gatepass.oauth.service import OAuthService
from gatepass.oauth.tokens import TokenClaims

__all__ = ["OAuthService", "TokenClaims", "rotate_signing_key"]
