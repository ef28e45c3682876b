"""The relying party: sign browsers in at corporate IdPs and map them to virtual keys.

    begin ──302──▶ IdP /authorize ──302──▶ GET /sso/callback/{idp} ──▶ completion(purpose)
      └─(several IdPs)─▶ chooser page ──GET /sso/choose──▶ IdP /authorize ...

Modules: `login` (begin, chooser), `callback` (the IdP's answer), `recheck` (on refresh),
`assertion` + `id_token` + `claims` (what the IdP's tokens say, checked), `discovery`
(metadata and keys, cached), `exchange` (token endpoint), `people` (users and mappings),
`http` (the outbound pool), `pages`, `audit`, `errors`; `resource` checks Bearer tokens the
IdPs issued themselves (Claude Desktop pointed at the corporate IdP directly).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gatepass.identity import Completion, FailureReturn, Purpose, Recheck
from gatepass.sso.callback import Callback
from gatepass.sso.discovery import Directory
from gatepass.sso.http import TIMEOUT, IdpHttp
from gatepass.sso.login import CHOOSE_PATH, Login
from gatepass.sso.recheck import Rechecker
from gatepass.sso.resource import ResourceServer

if TYPE_CHECKING:
    from gatepass.runtime import Gateway


class SsoService:
    """Implements `gatepass.identity.LoginBroker`. Constructed at app creation (no I/O);
    `start()`/`stop()` run in the lifespan. `transport` replaces the network toward IdPs."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.gateway = gateway
        self.http = IdpHttp(transport, timeout=timeout)
        self.directory = Directory(self.http)
        self._login = Login(gateway, self.http, self.directory)
        self._callback = Callback(self._login)
        self._rechecker = Rechecker(gateway, self.http, self.directory)
        # Bearer tokens the corporate IdPs issued themselves, checked with the same key cache.
        self.resource = ResourceServer(gateway, self.http, self.directory)
        gateway.tokens.use_external(gateway.settings.issuer, self.resource)

    async def start(self) -> None:
        await self.http.start()

    async def stop(self) -> None:
        await self.http.stop()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/sso/callback/{idp}", self._callback.handle, methods=["GET"]),
            Route(CHOOSE_PATH, self._login.choose, methods=["GET"]),
        ]

    def on_complete(self, purpose: Purpose, completion: Completion) -> None:
        self._login.completions[purpose] = completion

    def on_failure(self, purpose: Purpose, failure: FailureReturn) -> None:
        self._login.failures[purpose] = failure

    async def begin(
        self,
        request: Request,
        *,
        purpose: Purpose,
        payload: dict[str, Any],
        login_hint: str | None = None,
    ) -> Response:
        """Start a sign-in at the right IdP (or show the chooser) for this browser."""
        return await self._login.begin(
            request, purpose=purpose, payload=payload, login_hint=login_hint
        )

    async def recheck(self, user_id: int, auth_time: datetime) -> Recheck:
        """Whether the person may keep their session (called on every token refresh)."""
        return await self._rechecker.recheck(user_id, auth_time)
