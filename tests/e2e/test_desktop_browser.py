"""The desktop sign-in once through real headless Chromium (Debian's package), clicking the
idp-dev form. This is what proves the Referer the loopback callback sees is Gatepass's."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import SignIn
from tests.e2e.desktop import DesktopClient, loopback_listener, pkce

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium package is needed (scripts/services installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_desktop_sign_in_in_chromium_lands_on_loopback_with_gatepass_referer(
    signin: SignIn, browser: Browser
) -> None:
    desktop = DesktopClient(signin.issuer)
    desktop.discover()
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    context = browser.new_context()
    page = context.new_page()
    try:
        with loopback_listener() as listener:
            page.goto(desktop.authorization_url(listener.redirect_uri, state, challenge))
            page.fill("#login", "alice@corp.example")
            page.fill("#password", "alice-password")
            page.click("#submit")
            assert listener.arrived.wait(15), page.content()[:2000]
            callback = listener.received[-1]
            response = desktop.redeem(callback.query["code"], listener.redirect_uri, verifier)
    finally:
        context.close()
    assert callback.query["state"] == state
    assert callback.query["iss"] == signin.issuer
    assert callback.referer is not None
    assert urlsplit(callback.referer).netloc == urlsplit(signin.issuer).netloc
    assert response.status_code == 200, response.text
    tokens = response.json()
    reply = httpx2.post(
        signin.gatepass.base + "/v1/messages",
        headers={"authorization": f"Bearer {tokens['id_token']}"},
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert reply.status_code == 200, reply.text
