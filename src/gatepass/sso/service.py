"""The relying party: sign browsers in at corporate IdPs and map them to virtual keys."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gatepass.identity import Completion, Purpose, Recheck

if TYPE_CHECKING:
    from gatepass.runtime import Gateway


class SsoService:
    """Implements `gatepass.identity.LoginBroker`. Constructed at app creation (no I/O);
    `start()`/`stop()` run in the lifespan."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._completions: dict[str, Completion] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def routes(self) -> list[BaseRoute]:
        return []

    def on_complete(self, purpose: Purpose, completion: Completion) -> None:
        self._completions[purpose] = completion

    async def begin(
        self,
        request: Request,
        *,
        purpose: Purpose,
        payload: dict[str, Any],
        login_hint: str | None = None,
    ) -> Response:
        raise NotImplementedError

    async def recheck(self, user_id: int, auth_time: datetime) -> Recheck:
        raise NotImplementedError
