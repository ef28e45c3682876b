"""A faithful emulation of Claude Desktop's "Interactive sign-in" with an OIDC issuer.

What the real client does (see shared/reference/clients.md): read the issuer's discovery
document without following redirects, open the system browser at the authorization endpoint
with PKCE S256, `state` and a loopback redirect on a random port, check the callback's
`state`, `iss` and `Referer` host, redeem the code with no client secret, and send the
id_token as a bearer on every request; refresh with the refresh token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2
from idp_dev.testing import sign_in

SCOPES = "openid profile email offline_access"


@dataclass
class Callback:
    """What reached the loopback listener."""

    query: dict[str, str]
    referer: str | None


@dataclass
class LoopbackListener:
    port: int
    received: list[Callback] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"


@contextmanager
def loopback_listener() -> Iterator[LoopbackListener]:
    """Desktop's redirect target: an HTTP server on 127.0.0.1 and a random port."""
    state: dict[str, LoopbackListener] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            split = urlsplit(self.path)
            listener = state["listener"]
            if split.path == "/callback":
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                listener.received.append(Callback(query, self.headers.get("Referer")))
                listener.arrived.set()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(b"<p>You can close this window.</p>")

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    state["listener"] = LoopbackListener(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["listener"]
    finally:
        server.shutdown()
        server.server_close()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def continue_link(html: str, redirect_uri: str) -> str:
    """The link on Gatepass's last page that leads back to the loopback redirect."""
    parser = _Links()
    parser.feed(html)
    for href in parser.hrefs:
        if href.startswith(redirect_uri):
            return href
    raise AssertionError(f"no link to {redirect_uri} on the page:\n{html[:2000]}")


@dataclass
class DesktopClient:
    """Claude Desktop configured with `inferenceGatewayOidc = {issuer, clientId}`."""

    issuer: str
    client_id: str = "claude-desktop"
    metadata: dict[str, Any] = field(default_factory=dict)

    def discover(self) -> dict[str, Any]:
        response = httpx2.get(
            self.issuer + "/.well-known/openid-configuration", follow_redirects=False, timeout=10
        )
        assert response.status_code == 200, response.text
        self.metadata = response.json()
        assert self.metadata["issuer"] == self.issuer
        return self.metadata

    def authorization_url(self, redirect_uri: str, state: str, challenge: str, **extra: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return self.metadata["authorization_endpoint"] + "?" + urlencode(query)

    def browser_sign_in(
        self, listener: LoopbackListener, *, login: str, password: str
    ) -> tuple[Callback, str, str]:
        """Run the browser part with an HTTP client; returns (callback, state, verifier)."""
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(16)
        with httpx2.Client(follow_redirects=False, timeout=15) as browser:
            start = browser.get(self.authorization_url(listener.redirect_uri, state, challenge))
            assert start.status_code in (302, 303), start.text[:500]
            at_idp = urljoin(str(start.url), start.headers["location"])
            back = sign_in(browser, at_idp, login=login, password=password)
            landing = browser.get(urljoin(at_idp, back))
            assert landing.status_code == 200, landing.text[:1000]
            assert landing.headers["referrer-policy"] in (
                "origin",
                "strict-origin-when-cross-origin",
            )
            target = continue_link(landing.text, listener.redirect_uri)
            # A browser leaving a page with `Referrer-Policy: origin` sends the page's origin.
            origin = "{0.scheme}://{0.netloc}/".format(urlsplit(str(landing.url)))
            browser.get(target, headers={"referer": origin})
        assert listener.arrived.wait(10)
        return listener.received[-1], state, verifier

    def redeem(self, code: str, redirect_uri: str, verifier: str) -> httpx2.Response:
        return httpx2.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.client_id,
                "code_verifier": verifier,
            },
            timeout=15,
        )

    def refresh(self, refresh_token: str) -> httpx2.Response:
        return httpx2.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.client_id,
            },
            timeout=15,
        )

    def sign_in(self, *, login: str, password: str) -> dict[str, Any]:
        """The whole dance; returns the token response after checking the callback."""
        self.discover()
        with loopback_listener() as listener:
            callback, state, verifier = self.browser_sign_in(
                listener, login=login, password=password
            )
            assert callback.query.get("state") == state
            assert callback.query.get("iss") == self.issuer
            assert callback.referer is not None
            assert urlsplit(callback.referer).netloc == urlsplit(self.issuer).netloc
            response = self.redeem(callback.query["code"], listener.redirect_uri, verifier)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        tokens: dict[str, Any] = response.json()
        return tokens
