"""The issuer's happy paths as Claude Desktop drives them: discovery, JWKS, authorize, the
continue page, code exchange, id_token claims, userinfo."""

from __future__ import annotations

import json
import re

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.integration import test_oauth_support as support
from tests.integration.test_oauth_support import DESKTOP, SCOPE, Issuer, continue_target, pkce

make_issuer, issuer = support.make_issuer, support.issuer  # fixtures


def test_discovery_document_is_served_directly_with_every_field(issuer: Issuer) -> None:
    response = issuer.http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    meta = response.json()
    base = issuer.url
    assert meta["issuer"] == base
    assert meta["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert meta["token_endpoint"] == f"{base}/oauth/token"
    assert meta["jwks_uri"] == f"{base}/oauth/jwks"
    assert meta["userinfo_endpoint"] == f"{base}/oauth/userinfo"
    assert meta["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ]
    assert {"openid", "profile", "email", "offline_access"} <= set(meta["scopes_supported"])
    assert meta["subject_types_supported"] == ["public"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"sub", "email", "groups", "gatepass_key_id", "sid"} <= set(meta["claims_supported"])
    assert meta["authorization_response_iss_parameter_supported"] is True


def test_discovery_with_trailing_slash_is_served_not_redirected(issuer: Issuer) -> None:
    response = issuer.http.get("/.well-known/openid-configuration/")
    assert response.status_code == 200  # never a redirect: Desktop refuses to follow one
    assert response.json()["issuer"] == issuer.url


def test_jwks_publishes_one_rsa_signing_key_without_private_parts(issuer: Issuer) -> None:
    response = issuer.http.get("/oauth/jwks")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    (key,) = keys
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_authorize_answers_with_a_continue_page_on_gatepass_origin(issuer: Issuer) -> None:
    response = issuer.authorize(state="st-123", login_hint="alice@corp.example")
    assert response.status_code == 200
    headers = response.headers
    assert headers["referrer-policy"] == "origin"
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp)
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">window.location.replace(' in response.text
    assert headers["cache-control"] == "no-store"

    target = continue_target(response.text)
    assert target.startswith("http://127.0.0.1:53682/callback?code=")
    assert "&state=st-123&" in target
    assert f"iss={issuer.url.replace(':', '%3A').replace('/', '%2F')}" in target
    purpose, payload, hint = issuer.broker.begun[-1]
    assert purpose == "authorize"
    assert hint == "alice@corp.example"
    assert payload["client_id"] == DESKTOP
    assert payload["redirect_uri"] == "http://127.0.0.1:53682/callback"
    assert payload["state"] == "st-123"


def test_the_continue_script_carries_the_same_target_as_the_link(issuer: Issuer) -> None:
    response = issuer.authorize()
    script = re.search(r"window\.location\.replace\((\"[^\"]+\")\)", response.text)
    assert script is not None
    assert json.loads(script.group(1)) == continue_target(response.text)


def test_code_exchange_gives_bearer_tokens_and_a_verifiable_id_token(issuer: Issuer) -> None:
    callback = issuer.sign_in(nonce="n-42")
    response = issuer.redeem(callback)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == issuer.settings.sign_in.access_token_ttl
    assert body["scope"] == SCOPE
    assert len(body["refresh_token"]) >= 43

    keys = KeySet.import_key_set(issuer.http.get("/oauth/jwks").json())
    token = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    claims = token.claims
    who = issuer.identity
    assert token.header["typ"] == "JWT"
    assert claims["iss"] == issuer.url
    assert claims["aud"] == DESKTOP
    assert claims["azp"] == DESKTOP
    assert claims["sub"] == who.public_id
    assert claims["email"] == "alice@corp.example"
    assert claims["name"] == "Alice Example"
    assert claims["groups"] == ["engineering", "admins"]
    assert claims["gatepass_key_id"] == who.key_id
    assert claims["nonce"] == "n-42"
    assert claims["auth_time"] == int(who.auth_time.timestamp())
    assert claims["exp"] - claims["iat"] == issuer.settings.sign_in.access_token_ttl
    assert claims["sid"]

    access = jwt.decode(body["access_token"], keys, algorithms=["RS256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["aud"] == issuer.url + "/anthropic"
    assert access.claims["client_id"] == DESKTOP
    assert access.claims["sid"] == claims["sid"]
    assert access.claims["gatepass_key_id"] == who.key_id
    assert access.claims["scope"] == SCOPE
    assert access.claims["jti"]


def test_without_offline_access_there_is_no_refresh_token(issuer: Issuer) -> None:
    tokens = issuer.tokens(scope="openid email")
    assert "refresh_token" not in tokens.body
    assert tokens.body["scope"] == "openid email"


def test_unknown_scopes_are_left_out_of_the_grant(issuer: Issuer) -> None:
    tokens = issuer.tokens(scope="openid email weird:scope")
    assert tokens.body["scope"] == "openid email"


def test_authorize_by_post_form_works_like_get(issuer: Issuer) -> None:
    _, challenge = pkce()
    response = issuer.http.post(
        "/oauth/authorize",
        data={
            "response_type": "code",
            "client_id": DESKTOP,
            "redirect_uri": "http://127.0.0.1:4000/callback",
            "scope": "openid",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 200
    assert continue_target(response.text).startswith("http://127.0.0.1:4000/callback?code=")


def test_userinfo_describes_the_bearer_of_an_access_token(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    response = issuer.http.get(
        "/oauth/userinfo", headers={"authorization": f"Bearer {tokens.access_token}"}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["sub"] == issuer.identity.public_id
    assert body["email"] == "alice@corp.example"
    assert body["name"] == "Alice Example"
    assert body["groups"] == ["engineering", "admins"]


def test_userinfo_honours_the_granted_scopes(issuer: Issuer) -> None:
    tokens = issuer.tokens(scope="openid")
    body = issuer.http.get(
        "/oauth/userinfo", headers={"authorization": f"Bearer {tokens.access_token}"}
    ).json()
    assert body["sub"] == issuer.identity.public_id
    assert "email" not in body
    assert "name" not in body


def test_userinfo_refuses_id_tokens_garbage_and_no_token(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    for header in (f"Bearer {tokens.id_token}", "Bearer not-a-token"):
        response = issuer.http.get("/oauth/userinfo", headers={"authorization": header})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith(
            'Bearer realm="gatepass", error="invalid_token"'
        )
    response = issuer.http.get("/oauth/userinfo")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="gatepass"'
