"""Discovery metadata, the JWKS, and key rotation with a grace period."""

from __future__ import annotations

import httpx2
from idp_dev import IdpHandle
from idp_dev.testing import RelyingParty


def test_discovery_points_at_every_endpoint_under_the_issuer(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    meta = http.get(idp.discovery_url).json()
    assert meta["issuer"] == idp.issuer
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
    ):
        assert meta[name].startswith(idp.issuer + "/")
        # Every advertised endpoint exists (405 for a GET on a POST-only one is fine).
        assert http.get(meta[name]).status_code != 404
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert "groups" in meta["scopes_supported"]
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(
        meta["token_endpoint_auth_methods_supported"]
    )


def test_jwks_publishes_an_rs256_and_an_es256_public_key(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    keys = http.get(f"{idp.issuer}/jwks").json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "RS256"]
    assert all(k["use"] == "sig" and k["kid"] for k in keys)
    assert not any("d" in k for k in keys)  # no private parts


def test_rotation_signs_with_a_new_key_and_keeps_the_old_one_published(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    before = rp.login()
    old_kid = rp.verify(before["id_token"]).header["kid"]
    new_kids = idp.rotate_keys()
    after = rp.login()
    assert rp.verify(after["id_token"]).header["kid"] == new_kids["RS256"] != old_kid
    published = {k["kid"] for k in rp.jwks()["keys"]}  # type: ignore[attr-defined]
    assert {old_kid, new_kids["RS256"], new_kids["ES256"]} <= published
    assert rp.verify(before["id_token"]).claims["sub"] == "alice"


def test_rotated_out_key_leaves_the_jwks_after_the_grace_period(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    old_kid = rp.verify(rp.login()["id_token"]).header["kid"]
    idp.rotate_keys()
    idp.advance_clock(3600 + 1)
    published = {k["kid"] for k in rp.jwks()["keys"]}  # type: ignore[attr-defined]
    assert old_kid not in published
    assert len(published) == 2


def test_oauth_metadata_is_served_too(idp: IdpHandle, http: httpx2.Client) -> None:
    meta = http.get(f"{idp.issuer}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == idp.issuer
