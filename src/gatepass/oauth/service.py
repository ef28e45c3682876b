"""The issuer: discovery, JWKS, authorize, token, userinfo, revoke; and token verification.

Endpoint map (each a small class with one `handle`):

    GET  /.well-known/openid-configuration   metadata.DiscoveryEndpoint
    GET  /oauth/jwks                         metadata.JwksEndpoint
    GET  /oauth/authorize  (POST too)        authorize.AuthorizeEndpoint → broker.begin(...)
         broker completion "authorize"       authorize.AuthorizeCompletion → continue page
    POST /oauth/token                        token.TokenEndpoint → grants.Grants
    GET  /oauth/userinfo   (POST too)        userinfo.UserinfoEndpoint
    POST /oauth/revoke                       revoke.RevokeEndpoint

Device flow (RFC 8628, the Claude apps gateway protocol; also under /anthropic, where
clients that know only the base URL look):

    GET  /.well-known/oauth-authorization-server   metadata.AuthorizationServerEndpoint
    POST /oauth/device_authorization         device.DeviceAuthorizationEndpoint
    GET  /device  (POST too)                 device_page.DevicePages (show, submit)
    GET  /device/sign-in                     device_page.DevicePages.start → broker.begin(...)
         broker completion "device"          device_page.DevicePages.complete → Approve/Deny
    POST /device/confirm                     device_page.DevicePages.confirm
    POST /oauth/token (device grant)         device_grant.DeviceGrant
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gatepass.identity import LoginBroker, ReturnTo, SignedIn
from gatepass.oauth.authorize import AuthorizeCompletion, AuthorizeEndpoint
from gatepass.oauth.device import VERIFICATION_PATH, DeviceAuthorizationEndpoint
from gatepass.oauth.device_grant import DeviceGrant
from gatepass.oauth.device_guard import AttemptLimiter
from gatepass.oauth.device_page import CONFIRM_PATH, SIGN_IN_PATH, DevicePages
from gatepass.oauth.families import Families
from gatepass.oauth.grants import Grants
from gatepass.oauth.keys import PERIODIC_RELOAD_INTERVAL, SigningKeys
from gatepass.oauth.metadata import AuthorizationServerEndpoint, DiscoveryEndpoint, JwksEndpoint
from gatepass.oauth.revoke import RevokeEndpoint
from gatepass.oauth.token import TokenEndpoint
from gatepass.oauth.tokens import TokenClaims, TokenMinter, verify_token
from gatepass.oauth.userinfo import UserinfoEndpoint
from gatepass.store import oauth_queries as q
from gatepass.store.types import utcnow

if TYPE_CHECKING:
    from gatepass.runtime import Gateway

__all__ = ["OAuthService", "TokenClaims"]

log = logging.getLogger("gatepass.oauth")
MAINTENANCE_INTERVAL = PERIODIC_RELOAD_INTERVAL  # seconds
# Per client address (RFC 8628 §5.1, §5.2): new device codes, and wrong codes or refused
# decisions on the verification page.
DEVICE_REQUESTS = (30, 60.0)  # requests per seconds
DEVICE_PAGE_FAILURES = (10, 600.0)  # failures per seconds
ANTHROPIC_PREFIX = "/anthropic"


class OAuthService:
    """Constructed at app creation (no I/O); `start()`/`stop()` run in the lifespan."""

    def __init__(self, gateway: Gateway, broker: LoginBroker) -> None:
        self.gateway = gateway
        self.broker = broker
        self.settings = gateway.settings
        self.issuer = gateway.settings.issuer
        self._keys: SigningKeys | None = None
        self._families: Families | None = None
        self._reloader: asyncio.Task[None] | None = None
        self.device_requests = AttemptLimiter(*DEVICE_REQUESTS)
        self.device_page_failures = AttemptLimiter(*DEVICE_PAGE_FAILURES)
        broker.on_complete("authorize", self._complete_authorize)
        broker.on_failure("authorize", self._authorize_failed)
        broker.on_complete("device", self._complete_device)

    async def start(self) -> None:
        sign_in = self.settings.sign_in
        self._keys = SigningKeys(self.gateway.sessions, self.gateway.keyring)
        await self._keys.ensure()
        self._families = Families(
            self.gateway.sessions,
            remember_for=max(sign_in.refresh_token_absolute_ttl, sign_in.access_token_ttl),
            cache_ttl=self.settings.key_cache_ttl,
        )
        self._reloader = asyncio.create_task(self._maintain(), name="oauth-maintenance")

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
            self._reloader = None

    async def _maintain(self) -> None:
        """Re-read signing keys (rotations on other replicas) and forget dead rows, forever."""
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL)
            try:
                await self.keys.reload()
                await self.purge()
            except Exception:
                log.exception("OAuth maintenance failed; keeping the state in memory")

    async def purge(self) -> None:
        """Delete codes, refresh tokens and revoked families that can no longer matter."""
        cutoff = utcnow() - timedelta(days=1)  # kept a day longer for investigations
        async with self.gateway.sessions() as session:
            await q.delete_expired_authorization_codes(session, before=cutoff)
            await q.delete_dead_refresh_tokens(session, before=cutoff)
            await q.delete_forgotten_families(session, before=cutoff)
            # A redeemed device authorization marks its family as a device-flow one for as
            # long as the family's refresh tokens may live.
            absolute = timedelta(seconds=self.settings.sign_in.refresh_token_absolute_ttl)
            await q.delete_dead_device_authorizations(
                session, expired_before=cutoff, consumed_before=cutoff - absolute
            )
            await session.commit()

    @property
    def keys(self) -> SigningKeys:
        assert self._keys is not None, "OAuth service not started"
        return self._keys

    @property
    def families(self) -> Families:
        assert self._families is not None, "OAuth service not started"
        return self._families

    @property
    def minter(self) -> TokenMinter:
        return TokenMinter(self.keys, self.issuer, self.settings.sign_in.access_token_ttl)

    def routes(self) -> list[BaseRoute]:
        # Endpoints are built per request from the started collaborators: cheap, and it keeps
        # `routes()` callable before `start()` (the app mounts routes at creation).
        async def discovery(request: Request) -> Response:
            return await DiscoveryEndpoint(self.issuer).handle(request)

        async def jwks(request: Request) -> Response:
            return await JwksEndpoint(self.keys).handle(request)

        async def authorize(request: Request) -> Response:
            return await AuthorizeEndpoint(self.gateway.sessions, self.broker, self.issuer).handle(
                request
            )

        async def token(request: Request) -> Response:
            minter = self.minter
            grants = Grants(
                self.gateway.sessions,
                self.gateway.keyring,
                minter,
                self.families,
                self.broker,
                self.settings.sign_in,
            )
            device = DeviceGrant(self.gateway.sessions, self.gateway.keyring, minter, grants)
            endpoint = TokenEndpoint(self.gateway.sessions, self.gateway.keyring, grants, device)
            return await endpoint.handle(request)

        async def authorization_server(request: Request) -> Response:
            return await AuthorizationServerEndpoint(self.issuer).handle(request)

        async def device_authorization(request: Request) -> Response:
            endpoint = DeviceAuthorizationEndpoint(
                self.gateway.sessions,
                self.gateway.keyring,
                self.settings.sign_in,
                self.settings.public_url,
                self.device_requests,
            )
            return await endpoint.handle(request)

        async def userinfo(request: Request) -> Response:
            return await UserinfoEndpoint(self.gateway.sessions, self.verify, self.families).handle(
                request
            )

        async def revoke(request: Request) -> Response:
            endpoint = RevokeEndpoint(
                self.gateway.sessions, self.gateway.keyring, self.families, self.verify
            )
            return await endpoint.handle(request)

        async def device_form(request: Request) -> Response:
            pages = self.device_pages()
            return await (pages.submit if request.method == "POST" else pages.show)(request)

        async def device_sign_in(request: Request) -> Response:
            return await self.device_pages().start(request)

        async def device_confirm(request: Request) -> Response:
            return await self.device_pages().confirm(request)

        device_routes: list[BaseRoute] = []
        for prefix in ("", ANTHROPIC_PREFIX):
            metadata_path = prefix + "/.well-known/oauth-authorization-server"
            device_routes += [
                Route(metadata_path, authorization_server, methods=["GET"]),
                Route(metadata_path + "/", authorization_server, methods=["GET"]),
                Route(
                    prefix + "/oauth/device_authorization", device_authorization, methods=["POST"]
                ),
            ]
        # The protocol's fallbacks when the metadata's URLs are unusable: `{base}/oauth/...`.
        device_routes += [
            Route(ANTHROPIC_PREFIX + "/oauth/token", token, methods=["POST"]),
            Route(ANTHROPIC_PREFIX + "/oauth/revoke", revoke, methods=["POST"]),
            Route(VERIFICATION_PATH, device_form, methods=["GET", "POST"]),
            Route(SIGN_IN_PATH, device_sign_in, methods=["GET"]),
            Route(CONFIRM_PATH, device_confirm, methods=["POST"]),
        ]
        return [
            *device_routes,
            Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
            # Also with a trailing slash, served rather than redirected (Desktop follows none).
            Route("/.well-known/openid-configuration/", discovery, methods=["GET"]),
            Route("/oauth/jwks", jwks, methods=["GET"]),
            Route("/oauth/authorize", authorize, methods=["GET", "POST"]),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/oauth/userinfo", userinfo, methods=["GET", "POST"]),
            Route("/oauth/revoke", revoke, methods=["POST"]),
        ]

    def _authorize_completion(self) -> AuthorizeCompletion:
        return AuthorizeCompletion(
            self.gateway.sessions,
            self.gateway.keyring,
            self.issuer,
            self.settings.sign_in.authorization_code_ttl,
        )

    async def _complete_authorize(
        self, request: Request, payload: dict[str, Any], signed_in: SignedIn
    ) -> Response:
        return await self._authorize_completion()(request, payload, signed_in)

    async def _authorize_failed(
        self, payload: dict[str, Any], denied: bool, description: str
    ) -> ReturnTo | None:
        return await self._authorize_completion().way_back(payload, denied, description)

    def device_pages(self) -> DevicePages:
        return DevicePages(
            self.gateway.sessions,
            self.gateway.keyring,
            self.broker,
            self.settings.public_url,
            self.settings.secure_cookies,
            self.device_page_failures,
        )

    async def _complete_device(
        self, request: Request, payload: dict[str, Any], signed_in: SignedIn
    ) -> Response:
        return await self.device_pages().complete(request, payload, signed_in)

    async def rotate(self) -> str:
        """Start signing with a new key; old keys verify for `signing_key_grace` seconds more."""
        return await self.keys.rotate(self.settings.sign_in.signing_key_grace)

    async def verify(self, token: str) -> TokenClaims | None:
        """A Gatepass-issued JWT's claims if its signature, issuer, audience and expiry hold.

        CPU only once keys are loaded (an unknown `kid` may trigger one rate-limited reload).
        Does not check user/key/family state: the proxy does that against its caches, e.g.
        with `is_family_revoked`.
        """
        if self._keys is None:
            return None
        return await verify_token(self._keys, self.issuer, token)

    async def is_family_revoked(self, family_id: str) -> bool:
        """Whether the token family (`TokenClaims.family_id`) was revoked; a "no" is cached
        for `key_cache_ttl` seconds, a "yes" is remembered in this process."""
        return await self.families.is_revoked(family_id)
