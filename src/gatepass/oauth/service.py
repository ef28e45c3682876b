"""The issuer: discovery, JWKS, authorize, token, userinfo, revoke; and token verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from starlette.routing import BaseRoute

from gatepass.identity import LoginBroker

if TYPE_CHECKING:
    from gatepass.runtime import Gateway


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What the proxy needs from a verified Gatepass token (id_token or access token)."""

    subject: str  # the user's public_id
    key_id: int
    family_id: str  # the sign-in session (refresh-token family); revocable
    client_id: str
    expires_at: int  # Unix seconds
    token_use: Literal["id", "access"]
    email: str | None = None


class OAuthService:
    """Constructed at app creation (no I/O); `start()`/`stop()` run in the lifespan."""

    def __init__(self, gateway: Gateway, broker: LoginBroker) -> None:
        self.gateway = gateway
        self.broker = broker

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def routes(self) -> list[BaseRoute]:
        return []

    async def verify(self, token: str) -> TokenClaims | None:
        """A Gatepass-issued JWT's claims if its signature, issuer, audience and expiry hold.

        CPU only once keys are loaded (an unknown `kid` may trigger one rate-limited reload).
        Does not check user/key/family state: the proxy does that against its caches.
        """
        return None
