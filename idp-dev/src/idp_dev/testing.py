"""Drive a sign-in through idp-dev with a plain HTTP client, as a browser would, for tests."""

# ruff: noqa: S107 - the defaults are the documented demo credentials of `IdpConfig.demo()`

from __future__ import annotations

import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2
from authlib.oauth2.rfc7636 import (  # type: ignore[import-untyped, unused-ignore]
    create_s256_code_challenge,
)
from joserfc import jwt
from joserfc.jwk import KeySet


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    return verifier, str(create_s256_code_challenge(verifier))


def authorize_url(
    issuer: str,
    *,
    client_id: str,
    redirect_uri: str,
    code_challenge: str | None = None,
    scope: str = "openid email profile groups",
    state: str = "state-123",
    nonce: str | None = "nonce-456",
    **extra: str,
) -> str:
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        **extra,
    }
    if nonce is not None:
        params["nonce"] = nonce
    if code_challenge is not None:
        params["code_challenge"] = code_challenge
        params["code_challenge_method"] = "S256"
    return f"{issuer}/authorize?{urlencode(params)}"


class _Forms(HTMLParser):
    """Collects the hidden inputs and the action of the page's form."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "form":
            self.action = attributes.get("action")
        if tag == "input" and attributes.get("type") == "hidden":
            self.hidden[attributes.get("name", "")] = attributes.get("value", "")


def parse_form(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def sign_in(
    http: httpx2.Client,
    url: str,
    *,
    login: str,
    password: str,
    approve: bool = True,
) -> str:
    """Follow an authorization request through the form; return the URL sent back to the client.

    `http` must not follow redirects. Works whether or not a session lets the form be skipped.
    """
    response = http.get(url)
    for _ in range(3):
        if response.status_code in (302, 303):
            return response.headers["location"]
        if response.status_code not in (200, 401):
            raise AssertionError(f"unexpected {response.status_code}: {response.text[:200]}")
        form = parse_form(response.text)
        target = urljoin(url, form.action or "")
        if "password" in form.ids:
            data = {**form.hidden, "login": login, "password": password}
        else:
            data = {**form.hidden, "decision": "approve" if approve else "deny"}
        response = http.post(target, data=data)
    raise AssertionError("sign-in did not finish")


def callback_params(location: str) -> dict[str, str]:
    """The query parameters of a redirect to the client, one value each."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def verify(token: str, jwks: dict[str, object]) -> jwt.Token:
    """Check a JWT's signature against a JWKS, allowing only the algorithms idp-dev signs with."""
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    return jwt.decode(token, keys, algorithms=["RS256", "ES256"])


class RelyingParty:
    """A minimal confidential or public client, for tests that need tokens from idp-dev."""

    def __init__(
        self,
        http: httpx2.Client,
        issuer: str,
        *,
        client_id: str = "gatepass",
        client_secret: str | None = "gatepass-dev-secret",
        redirect_uri: str = "http://127.0.0.1:8765/auth/callback",
        auth_method: str = "client_secret_basic",
    ) -> None:
        self.http = http
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.auth_method = auth_method

    def authorize_url(self, code_challenge: str | None, **extra: str) -> str:
        return authorize_url(
            self.issuer,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            code_challenge=code_challenge,
            **extra,
        )

    def callback(
        self, login: str = "alice@corp.example", password: str = "alice-password", **extra: str
    ) -> tuple[dict[str, str], str]:
        """Sign in; returns the callback's parameters and the PKCE verifier to redeem with."""
        verifier, challenge = pkce_pair()
        location = sign_in(
            self.http, self.authorize_url(challenge, **extra), login=login, password=password
        )
        return callback_params(location), verifier

    def token_request(self, data: dict[str, str]) -> httpx2.Response:
        data = dict(data)
        url = f"{self.issuer}/token"
        if self.client_secret is None or self.auth_method == "none":
            data["client_id"] = self.client_id
        elif self.auth_method == "client_secret_post":
            data.update(client_id=self.client_id, client_secret=self.client_secret)
        else:
            return self.http.post(url, data=data, auth=(self.client_id, self.client_secret))
        return self.http.post(url, data=data)

    def redeem(self, code: str, verifier: str | None) -> httpx2.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if verifier is not None:
            data["code_verifier"] = verifier
        return self.token_request(data)

    def refresh(self, refresh_token: str) -> httpx2.Response:
        return self.token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def login(
        self, login: str = "alice@corp.example", password: str = "alice-password", **extra: str
    ) -> dict[str, str]:
        """The whole code flow; returns the token response body."""
        params, verifier = self.callback(login, password, **extra)
        response = self.redeem(params["code"], verifier)
        response.raise_for_status()
        body: dict[str, str] = response.json()
        return body

    def jwks(self) -> dict[str, object]:
        body: dict[str, object] = self.http.get(f"{self.issuer}/jwks").json()
        return body

    def verify(self, token: str) -> jwt.Token:
        return verify(token, self.jwks())
