"""Gatepass as an OAuth 2.0 / OpenID Connect issuer toward its clients (Claude Desktop, …)."""

from gatepass.oauth.service import OAuthService, TokenClaims

__all__ = ["OAuthService", "TokenClaims"]
