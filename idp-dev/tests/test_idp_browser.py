"""A real sign-in in headless Chromium (Debian's package; no browser download)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx2
import pytest
from idp_dev import Client, IdpHandle
from idp_dev.server import bind, serve_in_thread, socket_url
from idp_dev.testing import RelyingParty, pkce_pair
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

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

pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason="needs Debian's chromium package"
)


@dataclass
class Callbacks:
    """A stand-in relying party that records what arrives at its redirect URI."""

    base_url: str = ""
    seen: list[tuple[dict[str, str], str | None]] = field(default_factory=list)

    async def callback(self, request: Request) -> PlainTextResponse:
        self.seen.append((dict(request.query_params), request.headers.get("referer")))
        return PlainTextResponse("signed in")

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/auth/callback"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def relying_party() -> Iterator[Callbacks]:
    callbacks = Callbacks()
    app = Starlette(routes=[Route("/auth/callback", callbacks.callback)])
    sock = bind()
    callbacks.base_url = socket_url(sock)
    with serve_in_thread(app, sock):
        yield callbacks


@pytest.fixture
def rp(idp: IdpHandle, http: httpx2.Client, relying_party: Callbacks) -> RelyingParty:
    relying_party.seen.clear()
    return RelyingParty(http, idp.issuer, redirect_uri=relying_party.redirect_uri)


def sign_in_with_browser(page: Page, url: str, login: str, password: str) -> None:
    page.goto(url)
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#submit")


def test_browser_sign_in_reaches_the_callback_with_a_redeemable_code(
    idp: IdpHandle, page: Page, rp: RelyingParty, relying_party: Callbacks
) -> None:
    verifier, challenge = pkce_pair()
    sign_in_with_browser(page, rp.authorize_url(challenge), "alice@corp.example", "alice-password")
    page.wait_for_url(f"{relying_party.redirect_uri}?**")
    (params, referer), *_ = relying_party.seen
    assert params["state"] == "state-123"
    assert params["iss"] == idp.issuer
    # strict-origin-when-cross-origin: the callback learns our origin, not the login URL.
    assert referer == f"{idp.issuer}/"
    body = rp.redeem(params["code"], verifier).json()
    claims = rp.verify(body["id_token"]).claims
    assert claims["email"] == "alice@corp.example"
    assert claims["nonce"] == "nonce-456"


def test_browser_session_skips_the_form_on_the_next_authorization(
    idp: IdpHandle, page: Page, rp: RelyingParty, relying_party: Callbacks
) -> None:
    _, challenge = pkce_pair()
    sign_in_with_browser(page, rp.authorize_url(challenge), "bob@corp.example", "bob-password")
    page.wait_for_url(f"{relying_party.redirect_uri}?**")
    verifier, challenge = pkce_pair()
    page.goto(rp.authorize_url(challenge, state="second"))
    page.wait_for_url(f"{relying_party.redirect_uri}?**state=second**")
    params, _ = relying_party.seen[-1]
    assert params["state"] == "second"
    claims = rp.verify(rp.redeem(params["code"], verifier).json()["id_token"]).claims
    assert claims["sub"] == "bob"


def test_browser_wrong_password_shows_an_error_and_login_hint_prefills(
    idp: IdpHandle, page: Page, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    page.goto(rp.authorize_url(challenge, login_hint="alice@corp.example"))
    assert page.input_value("#login") == "alice@corp.example"
    page.fill("#password", "wrong")
    page.click("#submit")
    assert "Wrong email or password" in (page.text_content("#error") or "")


def test_browser_consent_page_approves(
    idp: IdpHandle, page: Page, http: httpx2.Client, relying_party: Callbacks
) -> None:
    relying_party.seen.clear()
    idp.add_client(
        Client(
            client_id="asks",
            client_secret="asks-secret",
            redirect_uris=(relying_party.redirect_uri,),
            require_consent=True,
        )
    )
    rp = RelyingParty(
        http, idp.issuer, client_id="asks", client_secret="asks-secret",
        redirect_uri=relying_party.redirect_uri,
    )  # fmt: skip
    verifier, challenge = pkce_pair()
    sign_in_with_browser(page, rp.authorize_url(challenge), "alice@corp.example", "alice-password")
    page.click("#approve")
    page.wait_for_url(f"{relying_party.redirect_uri}?**")
    params, _ = relying_party.seen[-1]
    assert rp.redeem(params["code"], verifier).status_code == 200
