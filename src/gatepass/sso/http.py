"""The one outbound HTTP connection pool toward IdPs: discovery, JWKS, token, userinfo.

Token requests go through Authlib's `AsyncOAuth2Client` (client authentication, PKCE, the
RFC 6749 error grammar). That client is an `httpx2.AsyncClient` holding per-login state (its
`token`), so each exchange gets a fresh one; they all borrow this pool's transport, so the
connections are still shared and closed once, in `stop()`.
"""

from __future__ import annotations

from typing import Any

import httpx2
from authlib.integrations.httpx_client import (  # type: ignore[import-untyped, unused-ignore]
    AsyncOAuth2Client,
)

from gatepass.sso.errors import IdpUnavailable, LoginError

TIMEOUT = 10.0  # seconds, per request to an IdP
MAX_DOCUMENT_BYTES = 512 * 1024  # discovery, JWKS and userinfo documents are small


class _Borrowed(httpx2.AsyncBaseTransport):
    """A transport that forwards to the shared one and leaves closing it to its owner."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None


class IdpHttp:
    """Owns the pool; `transport` lets tests (or an egress proxy) replace the network. As
    with an `httpx2.AsyncClient`, a transport given here is closed in `stop()`."""

    def __init__(
        self, transport: httpx2.AsyncBaseTransport | None = None, timeout: float = TIMEOUT
    ) -> None:
        self.timeout = timeout
        self._given = transport
        self._transport: httpx2.AsyncBaseTransport | None = None
        self._client: httpx2.AsyncClient | None = None

    async def start(self) -> None:
        self._transport = self._given or httpx2.AsyncHTTPTransport(retries=1)
        self._client = httpx2.AsyncClient(
            transport=_Borrowed(self._transport), timeout=self.timeout, trust_env=False
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._transport is not None:
            await self._transport.aclose()
        self._client = None
        self._transport = None

    @property
    def client(self) -> httpx2.AsyncClient:
        assert self._client is not None, "IdP HTTP client not started"
        return self._client

    def oauth_client(
        self, *, client_id: str, client_secret: str | None, redirect_uri: str | None = None
    ) -> AsyncOAuth2Client:
        """An Authlib client for one exchange: secret → client_secret_basic, else public."""
        assert self._transport is not None, "IdP HTTP client not started"
        return AsyncOAuth2Client(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method="client_secret_basic" if client_secret else "none",
            code_challenge_method="S256",
            redirect_uri=redirect_uri,
            transport=_Borrowed(self._transport),
            timeout=self.timeout,
            trust_env=False,
        )

    async def get_json(
        self, url: str, *, what: str, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """GET a JSON object; network trouble and 5xx → `IdpUnavailable`, other faults → `LoginError`."""
        try:
            response = await self.client.get(
                url, headers={"accept": "application/json", **(headers or {})}
            )
        except httpx2.HTTPError as exc:
            raise IdpUnavailable(f"{what}_unreachable", f"{type(exc).__name__}: {url}") from exc
        if response.status_code >= 500:
            raise IdpUnavailable(f"{what}_failed", f"HTTP {response.status_code} from {url}")
        if response.status_code != 200:
            raise LoginError(
                f"{what}_refused",
                "The identity provider refused a request Gatepass made while signing you in.",
                hint="Ask your administrator to check this identity provider's settings.",
                detail=f"HTTP {response.status_code} from {url}",
            )
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise LoginError(
                f"{what}_invalid",
                "The identity provider sent a response Gatepass cannot use.",
                detail=f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes",
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise LoginError(
                f"{what}_invalid",
                "The identity provider sent a response Gatepass cannot use.",
                detail=f"{url}: not JSON",
            ) from exc
        if not isinstance(body, dict):
            raise LoginError(
                f"{what}_invalid",
                "The identity provider sent a response Gatepass cannot use.",
                detail=f"{url}: not a JSON object",
            )
        return body
