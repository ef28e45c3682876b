"""Claude Desktop's interactive sign-in through Gatepass, with idp-dev as the corporate IdP."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import httpx2
from idp_dev.testing import sign_in
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.manage import identity as identity_ops
from gatepass.store.identity import GroupMapping
from tests.conftest import IDP_NAME, SignIn
from tests.e2e.desktop import DesktopClient, continue_link, loopback_listener, pkce

STREAM = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 16,
    "stream": True,
    "messages": [{"role": "user", "content": "Hello"}],
}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"}


def stream_message(signin: SignIn, token: str, body: dict[str, object] = STREAM) -> httpx2.Response:
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


def test_desktop_signs_in_streams_refreshes_and_is_deprovisioned(signin: SignIn) -> None:
    desktop = DesktopClient(signin.issuer)
    tokens = desktop.sign_in(login="alice@corp.example", password="alice-password")

    # the id_token is Gatepass's own, for this client, and names the mapped key
    jwks = KeySet.import_key_set(httpx2.get(desktop.metadata["jwks_uri"]).json())
    claims = jwt.decode(tokens["id_token"], jwks).claims
    assert claims["iss"] == signin.issuer
    assert claims["aud"] in ("claude-desktop", ["claude-desktop"])
    assert claims["email"] == "alice@corp.example"
    assert "engineering" in claims["groups"]

    # a streamed message with the id_token, as Desktop sends it by default
    response = stream_message(signin, tokens["id_token"])
    assert response.status_code == 200
    assert b"event: message_stop" in response.content
    row = signin.gatepass.wait_for_logs(1)[-1]
    assert row.user_email == "alice@corp.example"
    assert row.key_name == "eng-key"
    received = signin.gatepass.fake.requests[-1]
    assert received.header("authorization") is None
    assert tokens["id_token"] not in str(received.headers)

    # the key's allow-list applies to signed-in users too
    denied = stream_message(signin, tokens["id_token"], {**STREAM, "model": "claude-opus-4-7"})
    assert denied.status_code == 400

    # access_token mode works as well
    assert stream_message(signin, tokens["access_token"]).status_code == 200

    # refresh: a new id_token and refresh token; the spent refresh token is refused
    refreshed = desktop.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert renewed["id_token"] != tokens["id_token"]
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert stream_message(signin, renewed["id_token"]).status_code == 200
    reused = desktop.refresh(tokens["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    # ... and that reuse ended the whole session: the newest refresh token is dead too
    assert desktop.refresh(renewed["refresh_token"]).json()["error"] == "invalid_grant"
    check_epoch(signin)
    after_reuse = stream_message(signin, renewed["id_token"])
    assert after_reuse.status_code == 401
    assert after_reuse.headers["x-should-retry"] == "false"

    # a fresh sign-in; then alice leaves engineering at the IdP and refresh fails
    again = desktop.sign_in(login="alice@corp.example", password="alice-password")
    signin.idp.update_user("alice@corp.example", groups=["marketing"])
    failed = desktop.refresh(again["refresh_token"])
    assert failed.json()["error"] == "invalid_grant"


def test_bob_is_mapped_to_the_sales_key(signin: SignIn) -> None:
    tokens = DesktopClient(signin.issuer).sign_in(login="bob@corp.example", password="bob-password")
    assert stream_message(signin, tokens["id_token"]).status_code == 400  # sonnet not for sales
    haiku = {**STREAM, "model": "claude-haiku-4-5"}
    assert stream_message(signin, tokens["id_token"], haiku).status_code == 200
    assert signin.gatepass.wait_for_logs(1)[-1].key_name == "sales-key"


def test_disabling_a_user_fails_their_next_request(signin: SignIn) -> None:
    tokens = DesktopClient(signin.issuer).sign_in(
        login="alice@corp.example", password="alice-password"
    )
    assert stream_message(signin, tokens["id_token"]).status_code == 200
    signin.gatepass.store(
        lambda s: identity_ops.set_user_disabled(s, email="alice@corp.example", disabled=True)
    )
    check_epoch(signin)
    response = stream_message(signin, tokens["id_token"])
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_revoking_the_mapped_key_fails_the_next_request(signin: SignIn) -> None:
    tokens = DesktopClient(signin.issuer).sign_in(login="bob@corp.example", password="bob-password")
    haiku = {**STREAM, "model": "claude-haiku-4-5"}
    assert stream_message(signin, tokens["id_token"], haiku).status_code == 200
    signin.gatepass.revoke_key("sales-key")
    assert stream_message(signin, tokens["id_token"], haiku).status_code == 401


def test_forged_and_foreign_tokens_are_refused(signin: SignIn) -> None:
    tokens = DesktopClient(signin.issuer).sign_in(
        login="alice@corp.example", password="alice-password"
    )
    header, payload, signature = tokens["id_token"].split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    for token in (tampered, "a.b.c", tokens["id_token"] + "x"):
        response = stream_message(signin, token)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


def test_a_refused_sign_in_leads_desktop_back_with_access_denied(
    make_signin: Callable[..., SignIn],
) -> None:
    """Bob's group lost its mapping: Gatepass explains why, and its page links back to
    Desktop's loopback with `error=access_denied`, the state and `iss`, so Desktop stops
    waiting for a sign-in that will not come (RFC 6749 §4.1.2.1)."""
    signin = make_signin()

    async def unmap_sales(session: AsyncSession) -> None:
        await session.exec(delete(GroupMapping).where(col(GroupMapping.group) == "sales"))
        await session.commit()

    signin.gatepass.store(unmap_sales)
    desktop = DesktopClient(signin.issuer)
    desktop.discover()
    _verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    with loopback_listener() as listener, httpx2.Client(follow_redirects=False) as browser:
        start = browser.get(desktop.authorization_url(listener.redirect_uri, state, challenge))
        at_idp = urljoin(str(start.url), start.headers["location"])
        back = sign_in(browser, at_idp, login="bob", password="bob-password")
        landing = browser.get(urljoin(at_idp, back))
        assert landing.status_code == 403
        assert "No access" in landing.text
        assert "bob@corp.example" in landing.text
        assert landing.headers["referrer-policy"] == "origin"
        link = continue_link(landing.text, listener.redirect_uri)
        origin = "{0.scheme}://{0.netloc}/".format(urlsplit(str(landing.url)))
        browser.get(link, headers={"referer": origin})
        assert listener.arrived.wait(10)
    query = listener.received[-1].query
    assert query["error"] == "access_denied"
    assert query["state"] == state
    assert query["iss"] == signin.issuer
    assert "code" not in query
    assert "access" in query["error_description"].lower()


def test_a_tampered_callback_gets_a_page_and_no_way_back(signin: SignIn) -> None:
    """When the IdP's answer cannot be tied to a sign-in of ours, nothing is sent back."""
    with httpx2.Client(base_url=signin.issuer, follow_redirects=False) as browser:
        page = browser.get(f"/sso/callback/{IDP_NAME}", params={"state": "forged", "code": "x"})
    assert page.status_code == 400
    assert 'id="back"' not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
