"""The authorization code flow end to end over plain HTTP, checked against the JWKS."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import httpx2
from idp_dev import IdpHandle
from idp_dev.testing import RelyingParty, parse_form, pkce_pair, sign_in
from joserfc.jwt import JWTClaimsRegistry

StartIdp = Callable[..., IdpHandle]


def test_login_yields_id_token_that_verifies_against_the_jwks(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    params, verifier = rp.callback()
    assert params["state"] == "state-123"
    assert params["iss"] == idp.issuer
    body = rp.redeem(params["code"], verifier).json()
    token = rp.verify(body["id_token"])
    claims = token.claims
    JWTClaimsRegistry(
        iss={"essential": True, "value": idp.issuer},
        aud={"essential": True, "value": "gatepass"},
        sub={"essential": True, "value": "alice"},
        nonce={"essential": True, "value": "nonce-456"},
    ).validate(claims)
    assert token.header["alg"] == "RS256"
    assert claims["email"] == "alice@corp.example"
    assert claims["email_verified"] is True
    assert claims["name"] == "Alice Example"
    assert claims["groups"] == ["engineering", "admins"]
    assert claims["iat"] >= claims["auth_time"]
    assert claims["exp"] > claims["iat"]
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid email profile groups"


def test_access_token_is_a_signed_jwt_for_the_configured_audience(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    body = rp.login()
    token = rp.verify(body["access_token"])
    assert token.header["typ"] == "at+jwt"
    assert token.claims["aud"] == "gatepass"
    assert token.claims["iss"] == idp.issuer
    assert token.claims["sub"] == "alice"
    assert token.claims["client_id"] == "gatepass"
    assert token.claims["groups"] == ["engineering", "admins"]


def test_access_token_audience_is_configurable(start_idp: StartIdp, http: httpx2.Client) -> None:
    idp = start_idp(access_token_audience="api://corp-llm")
    rp = RelyingParty(http, idp.issuer)
    assert rp.verify(rp.login()["access_token"]).claims["aud"] == "api://corp-llm"


def test_userinfo_returns_the_same_subject_and_profile(rp: RelyingParty) -> None:
    body = rp.login()
    info = rp.http.get(
        f"{rp.issuer}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 200
    assert info.json() == {
        "sub": "alice",
        "name": "Alice Example",
        "email": "alice@corp.example",
        "email_verified": True,
        "groups": ["engineering", "admins"],
    }


def test_userinfo_refuses_a_missing_or_unknown_token(rp: RelyingParty) -> None:
    missing = rp.http.get(f"{rp.issuer}/userinfo")
    unknown = rp.http.get(f"{rp.issuer}/userinfo", headers={"Authorization": "Bearer nope"})
    assert missing.status_code == unknown.status_code == 401
    assert unknown.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_es256_signing_is_selectable(start_idp: StartIdp, http: httpx2.Client) -> None:
    idp = start_idp(signing_alg="ES256")
    rp = RelyingParty(http, idp.issuer)
    body = rp.login()
    assert rp.verify(body["id_token"]).header["alg"] == "ES256"
    assert rp.verify(body["access_token"]).header["alg"] == "ES256"


def test_groups_claim_name_is_configurable(start_idp: StartIdp, http: httpx2.Client) -> None:
    idp = start_idp(groups_claim="roles")
    rp = RelyingParty(http, idp.issuer)
    claims = rp.verify(rp.login()["id_token"]).claims
    assert claims["roles"] == ["engineering", "admins"]
    assert "groups" not in claims


def test_groups_need_the_groups_scope_unless_always_included(
    start_idp: StartIdp, http: httpx2.Client
) -> None:
    plain = start_idp()
    rp = RelyingParty(http, plain.issuer)
    assert "groups" not in rp.verify(rp.login(scope="openid email")["id_token"]).claims
    always = start_idp(always_include_groups=True)
    rp = RelyingParty(http, always.issuer)
    claims = rp.verify(rp.login(scope="openid")["id_token"]).claims
    assert claims["groups"] == ["engineering", "admins"]


def test_claims_follow_the_requested_scopes(rp: RelyingParty) -> None:
    claims = rp.verify(rp.login(scope="openid")["id_token"]).claims
    assert not {"email", "name", "groups"} & set(claims)
    assert claims["sub"] == "alice"


def test_extra_user_claims_are_released_with_profile(idp: IdpHandle, rp: RelyingParty) -> None:
    idp.update_user("alice@corp.example", claims={"department": "R&D"})
    assert rp.verify(rp.login()["id_token"]).claims["department"] == "R&D"


def test_wrong_password_shows_the_form_again_with_an_error(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    page = http.get(rp.authorize_url(challenge))
    form = parse_form(page.text)
    retry = http.post(
        f"{idp.issuer}/login",
        data={**form.hidden, "login": "alice@corp.example", "password": "wrong"},
    )
    assert retry.status_code == 401
    assert 'id="error"' in retry.text
    assert {"login", "password", "submit"} <= parse_form(retry.text).ids


def test_unknown_user_is_refused_like_a_wrong_password(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    form = parse_form(http.get(rp.authorize_url(challenge)).text)
    retry = http.post(
        f"{idp.issuer}/login",
        data={**form.hidden, "login": "mallory@corp.example", "password": "x"},
    )
    assert retry.status_code == 401


def test_login_page_has_the_form_ids_and_protective_headers(
    http: httpx2.Client, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    page = http.get(rp.authorize_url(challenge, login_hint="bob@corp.example"))
    assert page.status_code == 200
    assert {"login", "password", "submit"} <= parse_form(page.text).ids
    assert 'value="bob@corp.example"' in page.text
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_session_signs_in_without_the_form_on_the_next_authorization(
    http: httpx2.Client, rp: RelyingParty
) -> None:
    rp.login()
    _, challenge = pkce_pair()
    again = http.get(rp.authorize_url(challenge))
    assert again.status_code == 302
    assert "code=" in again.headers["location"]


def test_prompt_login_shows_the_form_despite_a_session(
    http: httpx2.Client, rp: RelyingParty
) -> None:
    rp.login()
    _, challenge = pkce_pair()
    again = http.get(rp.authorize_url(challenge, prompt="login"))
    assert again.status_code == 200
    assert "password" in parse_form(again.text).ids


def test_prompt_none_without_a_session_redirects_with_login_required(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    response = http.get(rp.authorize_url(challenge, prompt="none"))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(rp.redirect_uri + "?")
    assert "error=login_required" in location
    assert "state=state-123" in location
    assert f"iss={idp.issuer}".replace(":", "%3A").replace("/", "%2F") in location


def test_max_age_forces_a_fresh_sign_in_for_an_old_session(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    rp.login()
    idp.advance_clock(120)
    _, challenge = pkce_pair()
    assert http.get(rp.authorize_url(challenge, max_age="60")).status_code == 200
    assert http.get(rp.authorize_url(challenge, max_age="600")).status_code == 302


def test_consent_step_approves_then_is_remembered(idp: IdpHandle, http: httpx2.Client) -> None:
    rp = RelyingParty(
        http,
        idp.issuer,
        client_id="consenting",
        client_secret="consent-secret",
        redirect_uri="http://127.0.0.1:8765/auth/callback",
    )
    _, challenge = pkce_pair()
    url = rp.authorize_url(challenge)
    first = http.get(url)
    form = parse_form(first.text)
    consent = http.post(
        f"{idp.issuer}/login",
        data={**form.hidden, "login": "bob@corp.example", "password": "bob-password"},
    )
    assert consent.status_code == 200
    assert {"approve", "deny"} <= parse_form(consent.text).ids
    assert "x-frame-options" in consent.headers
    approved = http.post(
        f"{idp.issuer}/consent", data={**parse_form(consent.text).hidden, "decision": "approve"}
    )
    assert approved.status_code == 303
    assert "code=" in approved.headers["location"]
    assert http.get(url).status_code == 302  # consent remembered for the session


def test_consent_denied_redirects_with_access_denied(idp: IdpHandle, http: httpx2.Client) -> None:
    rp = RelyingParty(
        http,
        idp.issuer,
        client_id="consenting",
        client_secret="consent-secret",
        redirect_uri="http://127.0.0.1:8765/auth/callback",
    )
    _, challenge = pkce_pair()
    location = sign_in(
        http,
        rp.authorize_url(challenge),
        login="bob@corp.example",
        password="bob-password",
        approve=False,
    )
    assert "error=access_denied" in location
    assert "state=state-123" in location


def test_public_client_redeems_with_pkce_and_no_secret(idp: IdpHandle, http: httpx2.Client) -> None:
    rp = RelyingParty(
        http,
        idp.issuer,
        client_id="cli",
        client_secret=None,
        redirect_uri="http://127.0.0.1:7777/cb",
    )
    claims = rp.verify(rp.login()["id_token"]).claims
    assert claims["aud"] == "cli"


def test_client_secret_post_is_accepted(rp: RelyingParty) -> None:
    rp.auth_method = "client_secret_post"
    assert "id_token" in rp.login()


def test_end_session_clears_the_session_and_returns_to_a_registered_uri(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    body = rp.login()
    response = http.get(
        f"{idp.issuer}/logout",
        params={
            "id_token_hint": body["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1/",
            "state": "bye",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == "http://127.0.0.1/?state=bye"
    _, challenge = pkce_pair()
    assert (
        http.get(rp.authorize_url(challenge, prompt="none"))
        .headers["location"]
        .count("login_required")
    )


def test_end_session_accepts_any_loopback_port_for_a_loopback_client(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    response = http.get(
        f"{idp.issuer}/logout",
        params={"client_id": "gatepass", "post_logout_redirect_uri": "http://127.0.0.1:8000/"},
    )
    assert response.status_code == 302
    assert response.headers["location"] == "http://127.0.0.1:8000/"


def test_end_session_refuses_an_unregistered_post_logout_uri(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    response = http.get(
        f"{idp.issuer}/logout",
        params={"client_id": "gatepass", "post_logout_redirect_uri": "https://evil.example/"},
    )
    assert response.status_code == 400
    assert "location" not in response.headers


def test_end_session_without_a_redirect_shows_a_signed_out_page(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    response = http.get(f"{idp.issuer}/logout")
    assert response.status_code == 200
    assert "signed out" in response.text


def test_redirect_back_keeps_the_client_redirect_uri_intact(rp: RelyingParty) -> None:
    params, _ = rp.callback()
    assert set(params) == {"code", "state", "iss"}
    assert urlsplit(rp.redirect_uri).path == "/auth/callback"
