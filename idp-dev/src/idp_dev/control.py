"""`/_control/*`: the in-process control API over JSON, for a provider in another process.

Loopback peers only, a loopback `Host` (no DNS rebinding) and JSON bodies (no form CSRF).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from idp_dev.config import Client, ConfigError, User, build
from idp_dev.provider import Provider
from idp_dev.redirects import LOOPBACK_HOSTS

Handler = Callable[[Request], Awaitable[Response]]


def _user_json(user: User) -> dict[str, Any]:
    data = asdict(user)
    data.pop("password")
    return data


@dataclass
class Control:
    provider: Provider

    def routes(self) -> list[Route]:
        return [
            Route("/_control/switches", self._guard(self.switches), methods=["GET", "POST"]),
            Route("/_control/reset", self._guard(self.reset), methods=["POST"]),
            Route("/_control/restore", self._guard(self.restore), methods=["POST"]),
            Route("/_control/rotate-keys", self._guard(self.rotate_keys), methods=["POST"]),
            Route("/_control/clock", self._guard(self.clock), methods=["POST"]),
            Route("/_control/users", self._guard(self.add_user), methods=["POST"]),
            Route("/_control/users/{who}", self._guard(self.update_user), methods=["PATCH"]),
            Route("/_control/clients", self._guard(self.add_client), methods=["POST"]),
        ]

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            peer = request.client.host if request.client else ""
            host = request.url.hostname or ""
            if peer not in LOOPBACK_HOSTS or host not in LOOPBACK_HOSTS:
                return JSONResponse({"error": "control is loopback only"}, status_code=403)
            if request.method != "GET" and request.headers.get("content-type", "").split(";")[
                0
            ].strip() not in ("application/json", ""):
                return JSONResponse({"error": "send JSON"}, status_code=415)
            try:
                return await handler(request)
            except (ConfigError, ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return guarded

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    async def switches(self, request: Request) -> Response:
        if request.method == "POST":
            self.provider.set(**await self._body(request))
        return JSONResponse(self.provider.switches.as_dict())

    async def reset(self, request: Request) -> Response:
        return JSONResponse(self.provider.reset().as_dict())

    async def restore(self, request: Request) -> Response:
        self.provider.restore()
        return JSONResponse({"restored": True})

    async def rotate_keys(self, request: Request) -> Response:
        return JSONResponse(self.provider.rotate_keys())

    async def clock(self, request: Request) -> Response:
        seconds = (await self._body(request))["advance"]
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ValueError("advance must be a number of seconds")
        self.provider.advance_clock(seconds)
        return JSONResponse({"now": self.provider.clock.now()})

    async def add_user(self, request: Request) -> Response:
        user = self.provider.add_user(build(User, await self._body(request), "user"))
        return JSONResponse(_user_json(user), status_code=201)

    async def update_user(self, request: Request) -> Response:
        user = self.provider.update_user(request.path_params["who"], **await self._body(request))
        return JSONResponse(_user_json(user))

    async def add_client(self, request: Request) -> Response:
        client = self.provider.add_client(build(Client, await self._body(request), "client"))
        data = asdict(client)
        data.pop("client_secret")
        return JSONResponse(data, status_code=201)
