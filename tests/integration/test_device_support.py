"""Shared helpers for the device-flow tests (no tests here): a device-flow client the way Claude
Code's `/login` drives it, and a "browser" (an HTTP client keeping cookies, sending `Origin`
as browsers do on POST) that walks Gatepass → idp-dev → Gatepass."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

import httpx2
import pytest
from idp_dev.testing import parse_form, sign_in
from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.oauth import DeviceAuthorization
from gatepass.store.types import utcnow
from tests.conftest import SignIn

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
STREAM = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 16,
    "stream": True,
    "messages": [{"role": "user", "content": "Hello"}],
}
USER_AGENT = "claude-code/2.1.331"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"}


def stream_message(signin: SignIn, token: str, body: dict[str, Any] = STREAM) -> httpx2.Response:
    with httpx2.stream(
        "POST", signin.gatepass.base + "/v1/messages", headers=bearer(token), json=body, timeout=30
    ) as response:
        response.read()
        return response


def check_epoch(signin: SignIn) -> None:
    """What every replica does each second: notice revocations made elsewhere."""
    gateway = signin.gatepass.gateway
    assert gateway.loop is not None
    asyncio.run_coroutine_threadsafe(gateway.check_change_epoch(), gateway.loop).result(5)


def edit_request(signin: SignIn, user_code: str, **values: Any) -> None:
    """Change a stored device authorization (e.g. move its times) by its displayed code."""
    normalised = user_code.replace("-", "")

    async def action(session: AsyncSession) -> None:
        await session.exec(
            update(DeviceAuthorization)
            .where(col(DeviceAuthorization.user_code) == normalised)
            .values(**values)
        )

    signin.gatepass.store(action)


def expire(signin: SignIn, user_code: str) -> None:
    edit_request(signin, user_code, expires_at=utcnow() - timedelta(seconds=1))


def allow_next_poll(signin: SignIn, user_code: str) -> None:
    """As if the client had waited its interval since the last poll."""
    edit_request(signin, user_code, last_polled_at=utcnow() - timedelta(hours=1))


@dataclass
class DeviceClient:
    """Claude Code's `/login` in gateway mode: metadata, device authorization, polling."""

    base: str  # https://HOST/anthropic
    http: httpx2.Client = field(
        default_factory=lambda: httpx2.Client(
            follow_redirects=False, timeout=15, headers={"user-agent": USER_AGENT}
        )
    )
    metadata: dict[str, Any] = field(default_factory=dict)

    def discover(self) -> dict[str, Any]:
        response = self.http.get(self.base + "/.well-known/oauth-authorization-server")
        assert response.status_code == 200, response.text
        self.metadata = response.json()
        return self.metadata

    def authorize(self, **form: str) -> dict[str, Any]:
        if not self.metadata:
            self.discover()
        data = form or {"surface": "claude_code"}
        response = self.http.post(self.metadata["device_authorization_endpoint"], data=data)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body: dict[str, Any] = response.json()
        return body

    def poll(self, device_code: str, **extra: str) -> httpx2.Response:
        if not self.metadata:
            self.discover()
        data = {"grant_type": DEVICE_GRANT, "device_code": device_code, **extra}
        return self.http.post(self.metadata["token_endpoint"], data=data)

    def refresh(self, refresh_token: str, **extra: str) -> httpx2.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        return self.http.post(self.metadata["token_endpoint"], data=data)

    def revoke(self, token: str, **extra: str) -> httpx2.Response:
        return self.http.post(self.metadata["revocation_endpoint"], data={"token": token, **extra})


def hrefs(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}" href="([^"]+)"', html)
    assert found is not None, html[:2000]
    return found.group(1).replace("&amp;", "&")


@dataclass
class Browser:
    """The user's browser: keeps cookies, sends `Origin` on POST like a real one."""

    origin: str  # Gatepass's public URL
    http: httpx2.Client = field(
        default_factory=lambda: httpx2.Client(follow_redirects=False, timeout=15)
    )

    def open(self, url: str) -> httpx2.Response:
        return self.http.get(urljoin(self.origin, url))

    def post(self, path: str, data: dict[str, str], **headers: str) -> httpx2.Response:
        sent = {"origin": self.origin, "sec-fetch-site": "same-origin", **headers}
        return self.http.post(urljoin(self.origin, path), data=data, headers=sent)

    def enter_code(self, user_code: str, page: httpx2.Response | None = None) -> httpx2.Response:
        """Submit the code form (opening /device first unless `page` is that form)."""
        page = page or self.open("/device")
        form = parse_form(page.text)
        return self.post("/device", {**form.hidden, "user_code": user_code})

    def sign_in(
        self, continue_page: httpx2.Response, *, login: str, password: str
    ) -> httpx2.Response:
        """From the "sign in to continue" page, through idp-dev, to the Approve/Deny page."""
        assert continue_page.status_code == 200, continue_page.text[:1000]
        start = self.open(hrefs(continue_page.text, "sign-in"))
        assert start.status_code in (302, 303), start.text[:1000]
        at_idp = start.headers["location"]
        back = sign_in(self.http, at_idp, login=login, password=password)
        return self.http.get(urljoin(at_idp, back))

    def decide(
        self, confirm_page: httpx2.Response, decision: str, **headers: str
    ) -> httpx2.Response:
        form = parse_form(confirm_page.text)
        assert form.action == "/device/confirm", confirm_page.text[:2000]
        return self.post("/device/confirm", {**form.hidden, "decision": decision}, **headers)

    def approve_code(
        self,
        user_code: str,
        *,
        login: str = "alice@corp.example",
        password: str = "alice-password",
        decision: str = "approve",
    ) -> httpx2.Response:
        """The whole browser part, from typing the code to the decision's answer."""
        confirm = self.sign_in(self.enter_code(user_code), login=login, password=password)
        assert confirm.status_code == 200, confirm.text[:2000]
        decided = self.decide(confirm, decision)
        assert decided.status_code == 200, decided.text[:2000]
        return decided


@dataclass
class Devices:
    """Makes device-flow clients and browsers for one Gatepass, and closes them at the end."""

    signin: SignIn
    opened: list[httpx2.Client] = field(default_factory=list)

    def client(self) -> DeviceClient:
        client = DeviceClient(self.signin.gatepass.base)
        self.opened.append(client.http)
        return client

    def browser(self) -> Browser:
        browser = Browser(self.signin.issuer)
        self.opened.append(browser.http)
        return browser

    def signed_in(self, **login: str) -> tuple[DeviceClient, dict[str, Any]]:
        """A client that went through the whole flow; returns it and its token response."""
        client = self.client()
        grant = client.authorize()
        self.browser().approve_code(grant["user_code"], **login)
        response = client.poll(grant["device_code"])
        assert response.status_code == 200, response.text
        return client, response.json()


@pytest.fixture
def devices(signin: SignIn) -> Iterator[Devices]:
    made = Devices(signin)
    yield made
    for http in made.opened:
        http.close()
