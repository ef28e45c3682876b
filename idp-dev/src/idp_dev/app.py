"""The ASGI application: one Starlette app around one in-memory `Provider`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from idp_dev.authorize import Authorization
from idp_dev.config import IdpConfig
from idp_dev.control import Control
from idp_dev.discovery import Discovery
from idp_dev.logout import EndSession
from idp_dev.provider import Provider
from idp_dev.revoke import Revocation
from idp_dev.token import TokenEndpoint
from idp_dev.userinfo import UserInfo


def routes(provider: Provider) -> list[Route]:
    discovery = Discovery(provider)
    authorization = Authorization(provider)
    userinfo = UserInfo(provider)
    return [
        Route("/.well-known/openid-configuration", discovery.configuration),
        Route("/.well-known/oauth-authorization-server", discovery.configuration),
        Route("/jwks", discovery.jwks),
        Route("/authorize", authorization.authorize, methods=["GET", "POST"]),
        Route("/login", authorization.login, methods=["POST"]),
        Route("/consent", authorization.consent, methods=["POST"]),
        Route("/token", TokenEndpoint(provider).handle, methods=["POST"]),
        Route("/userinfo", userinfo.userinfo, methods=["GET", "POST"]),
        Route("/users/{sub}/groups", userinfo.groups),
        Route("/revoke", Revocation(provider).handle, methods=["POST"]),
        Route("/logout", EndSession(provider).handle, methods=["GET", "POST"]),
        *Control(provider).routes(),
    ]


def create_app(config: IdpConfig, issuer: str) -> Starlette:
    """The provider as an ASGI app; `app.state.provider` is the object the control API drives."""
    provider = Provider(config, config.issuer or issuer)
    app = Starlette(routes=routes(provider))
    app.state.provider = provider
    return app
