"""Gatepass as a relying party to corporate OIDC identity providers (the broker's upstream)."""

from gatepass.sso.service import SsoService

__all__ = ["SsoService"]
