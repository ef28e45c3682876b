"""Each misbehaviour switch produces exactly the defect it names, and nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives import serialization
from idp_dev import IdpHandle, Switches
from idp_dev import switches as sw
from idp_dev.testing import RelyingParty, callback_params, pkce_pair
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, JoseError
from joserfc.jwk import RSAKey
from joserfc.jwt import JWTClaimsRegistry

VOLATILE = {"iat", "exp", "auth_time", "at_hash"}


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims without checking anything: what a careless RP would read."""
    head, payload, _ = token.split(".")
    return json.loads(_b64decode(head)), json.loads(_b64decode(payload))


def differing(base: dict[str, Any], bent: dict[str, Any]) -> set[str]:
    keys = (set(base) | set(bent)) - VOLATILE
    return {k for k in keys if base.get(k) != bent.get(k)}


def login(idp: IdpHandle, rp: RelyingParty, **switches: Any) -> dict[str, str]:
    idp.reset()
    idp.set(**switches)
    return rp.login()


def baseline(idp: IdpHandle, rp: RelyingParty) -> dict[str, Any]:
    idp.reset()
    return rp.verify(rp.login()["id_token"]).claims


def userinfo(rp: RelyingParty, access_token: str) -> dict[str, Any]:
    response = rp.http.get(
        f"{rp.issuer}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def now() -> int:
    return int(time.time())


# -- claims ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("switch", "claim", "value"),
    [
        ("wrong_iss", "iss", sw.WRONG_ISSUER),
        ("wrong_aud", "aud", sw.WRONG_AUDIENCE),
        ("wrong_nonce", "nonce", sw.WRONG_NONCE),
    ],
)
def test_claim_switch_bends_only_its_claim_and_the_signature_stays_valid(
    idp: IdpHandle, rp: RelyingParty, switch: str, claim: str, value: str
) -> None:
    base = baseline(idp, rp)
    body = login(idp, rp, **{switch: True})
    bent = rp.verify(body["id_token"]).claims
    assert differing(base, bent) == {claim}
    assert bent[claim] == value
    # Access tokens are left alone unless asked for.
    assert rp.verify(body["access_token"]).claims["iss"] == idp.issuer


def test_extra_aud_adds_an_audience_with_a_matching_azp(idp: IdpHandle, rp: RelyingParty) -> None:
    base = baseline(idp, rp)
    bent = rp.verify(login(idp, rp, extra_aud=True)["id_token"]).claims
    assert differing(base, bent) == {"aud", "azp"}
    assert bent["aud"] == ["gatepass", sw.OTHER_AUDIENCE]
    assert bent["azp"] == "gatepass"


def test_azp_mismatch_names_another_party_as_authorized(idp: IdpHandle, rp: RelyingParty) -> None:
    base = baseline(idp, rp)
    bent = rp.verify(login(idp, rp, azp_mismatch=True)["id_token"]).claims
    assert differing(base, bent) == {"aud", "azp"}
    assert bent["aud"] == ["gatepass", sw.OTHER_AUDIENCE]
    assert bent["azp"] == sw.OTHER_AUDIENCE


def test_expired_issues_a_token_that_is_already_expired(idp: IdpHandle, rp: RelyingParty) -> None:
    base = baseline(idp, rp)
    bent = rp.verify(login(idp, rp, expired=True)["id_token"]).claims
    assert differing(base, bent) == set()
    assert bent["exp"] <= now() - sw.CLOCK_SHIFT + 5
    assert bent["exp"] - bent["iat"] == base["exp"] - base["iat"]
    with pytest.raises(ExpiredTokenError):
        JWTClaimsRegistry().validate(bent)


def test_future_iat_issues_a_token_from_the_future(idp: IdpHandle, rp: RelyingParty) -> None:
    base = baseline(idp, rp)
    bent = rp.verify(login(idp, rp, future_iat=True)["id_token"]).claims
    assert differing(base, bent) == set()
    assert bent["iat"] >= now() + sw.CLOCK_SHIFT - 5
    assert bent["auth_time"] <= now()


def test_missing_nonce_drops_the_nonce(idp: IdpHandle, rp: RelyingParty) -> None:
    base = baseline(idp, rp)
    bent = rp.verify(login(idp, rp, missing_nonce=True)["id_token"]).claims
    assert differing(base, bent) == {"nonce"}
    assert "nonce" not in bent


def test_missing_sub_drops_the_subject_from_id_token_and_userinfo(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    base = baseline(idp, rp)
    body = login(idp, rp, missing_sub=True)
    bent = rp.verify(body["id_token"]).claims
    assert differing(base, bent) == {"sub"}
    assert "sub" not in userinfo(rp, body["access_token"])


def test_missing_groups_drops_the_groups_claim_everywhere(idp: IdpHandle, rp: RelyingParty) -> None:
    base = baseline(idp, rp)
    body = login(idp, rp, missing_groups=True)
    bent = rp.verify(body["id_token"]).claims
    assert differing(base, bent) == {"groups"}
    assert "groups" not in userinfo(rp, body["access_token"])
    assert "groups" not in rp.verify(body["access_token"]).claims


def test_groups_truncated_lists_only_the_first_100_and_loses_real_groups(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    base = baseline(idp, rp)
    body = login(idp, rp, groups_truncated=True)
    bent = rp.verify(body["id_token"]).claims
    assert differing(base, bent) == {"groups"}
    assert len(bent["groups"]) == sw.OKTA_GROUP_LIMIT
    assert "admins" not in bent["groups"]
    assert userinfo(rp, body["access_token"])["groups"] == bent["groups"]


def test_groups_overage_replaces_groups_with_entra_markers(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    base = baseline(idp, rp)
    body = login(idp, rp, groups_overage=True)
    bent = rp.verify(body["id_token"]).claims
    assert differing(base, bent) == {"groups", "_claim_names", "_claim_sources"}
    assert bent["_claim_names"] == {"groups": "src1"}
    endpoint = bent["_claim_sources"]["src1"]["endpoint"]
    assert endpoint == f"{idp.issuer}/users/alice/groups"
    full = rp.http.get(endpoint, headers={"Authorization": f"Bearer {body['access_token']}"})
    groups = full.json()["value"]
    assert len(groups) == sw.OVERAGE_GROUP_COUNT
    assert {"engineering", "admins"} <= set(groups)


def test_unverified_email_marks_the_email_unverified(idp: IdpHandle, rp: RelyingParty) -> None:
    base = baseline(idp, rp)
    body = login(idp, rp, unverified_email=True)
    bent = rp.verify(body["id_token"]).claims
    assert differing(base, bent) == {"email_verified"}
    assert bent["email_verified"] is False
    assert userinfo(rp, body["access_token"])["email_verified"] is False


def test_userinfo_sub_mismatch_changes_only_the_userinfo_subject(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    base = baseline(idp, rp)
    body = login(idp, rp, userinfo_sub_mismatch=True)
    assert differing(base, rp.verify(body["id_token"]).claims) == set()
    info = userinfo(rp, body["access_token"])
    assert info["sub"] != "alice"
    assert info["email"] == "alice@corp.example"


# -- signatures and keys -------------------------------------------------------------------


def test_bad_signature_keeps_header_and_claims_but_fails_verification(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    base = baseline(idp, rp)
    token = login(idp, rp, bad_signature=True)["id_token"]
    header, claims = unverified(token)
    assert header["alg"] == "RS256"
    assert header["kid"] in {k["kid"] for k in rp.jwks()["keys"]}  # type: ignore[attr-defined]
    assert differing(base, claims) == set()
    with pytest.raises(BadSignatureError):
        rp.verify(token)


def test_alg_none_sends_an_unsigned_token(idp: IdpHandle, rp: RelyingParty) -> None:
    base = baseline(idp, rp)
    token = login(idp, rp, alg_none=True)["id_token"]
    header, claims = unverified(token)
    assert header == {"alg": "none", "typ": "JWT"}
    assert token.endswith(".")
    assert differing(base, claims) == set()
    with pytest.raises(JoseError):
        rp.verify(token)


def test_hs256_public_key_signs_with_hmac_keyed_by_the_published_rsa_key(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    base = baseline(idp, rp)
    token = login(idp, rp, hs256_public_key=True)["id_token"]
    header, claims = unverified(token)
    assert header["alg"] == "HS256"
    assert differing(base, claims) == set()
    # Anyone holding the JWKS can make this MAC: it verifies with the public key's PEM.
    jwk = next(k for k in rp.jwks()["keys"] if k["kid"] == header["kid"])  # type: ignore[attr-defined]
    pem = RSAKey.import_key(jwk).public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert _b64decode(signature) == expected
    with pytest.raises(JoseError):
        rp.verify(token)


def test_unknown_kid_names_a_key_absent_from_the_jwks(idp: IdpHandle, rp: RelyingParty) -> None:
    token = login(idp, rp, unknown_kid=True)["id_token"]
    header, _ = unverified(token)
    jwks = rp.jwks()
    assert header["kid"] == sw.UNKNOWN_KID
    assert sw.UNKNOWN_KID not in {k["kid"] for k in jwks["keys"]}  # type: ignore[attr-defined]
    # The signature itself is sound: the real RS256 key verifies it once the kid is ignored.
    real = next(k for k in jwks["keys"] if k["alg"] == "RS256")  # type: ignore[attr-defined]
    assert jwt.decode(token, RSAKey.import_key(real), algorithms=["RS256"]).claims["sub"]


def test_no_kid_omits_the_kid_while_the_jwks_holds_several_keys(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    token = login(idp, rp, no_kid=True)["id_token"]
    header, _ = unverified(token)
    jwks = rp.jwks()
    assert "kid" not in header
    assert len(jwks["keys"]) >= 2  # type: ignore[arg-type]
    real = next(k for k in jwks["keys"] if k["alg"] == "RS256")  # type: ignore[attr-defined]
    assert jwt.decode(token, RSAKey.import_key(real), algorithms=["RS256"]).claims["sub"]


@pytest.mark.parametrize(
    "switches",
    [{"wrong_iss": True}, {"bad_signature": True}, {"alg_none": True}, {"unknown_kid": True}],
)
def test_apply_to_access_tokens_extends_shape_defects_to_access_tokens(
    idp: IdpHandle, rp: RelyingParty, switches: dict[str, bool]
) -> None:
    body = login(idp, rp, apply_to_access_tokens=True, **switches)
    access = body["access_token"]
    header, claims = unverified(access)
    if "wrong_iss" in switches:
        assert claims["iss"] == sw.WRONG_ISSUER
        assert rp.verify(access).claims["aud"] == "gatepass"
    else:
        with pytest.raises(JoseError):
            rp.verify(access)
    assert claims["sub"] == "alice"
    assert header["typ"] == "at+jwt"


# -- discovery and the authorization response ------------------------------------------------


def test_discovery_issuer_mismatch_changes_only_the_issuer(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    honest = http.get(idp.discovery_url).json()
    idp.set(discovery_issuer_mismatch=True)
    bent = http.get(idp.discovery_url).json()
    assert differing(honest, bent) == {"issuer"}
    assert bent["issuer"] == sw.WRONG_ISSUER
    assert rp.verify(rp.login()["id_token"]).claims["iss"] == idp.issuer


def test_missing_auth_response_iss_drops_iss_from_the_callback(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    idp.set(missing_auth_response_iss=True)
    params, verifier = rp.callback()
    assert set(params) == {"code", "state"}
    assert rp.redeem(params["code"], verifier).status_code == 200


def test_wrong_auth_response_iss_names_another_issuer_on_the_callback(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    idp.set(wrong_auth_response_iss=True)
    params, verifier = rp.callback()
    assert params["iss"] == sw.WRONG_ISSUER
    assert rp.redeem(params["code"], verifier).status_code == 200


def test_callback_error_answers_the_authorization_with_that_error(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    idp.set(callback_error="access_denied")
    _, challenge = pkce_pair()
    response = http.get(rp.authorize_url(challenge))
    assert response.status_code == 302
    params = callback_params(response.headers["location"])
    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"
    assert params["iss"] == idp.issuer
    assert "code" not in params


# -- the token endpoint ---------------------------------------------------------------------


def test_token_failure_status_fails_the_token_endpoint_without_burning_the_code(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    params, verifier = rp.callback()
    idp.set(token_failure_status=503)
    failed = rp.redeem(params["code"], verifier)
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    idp.reset()
    assert rp.redeem(params["code"], verifier).status_code == 200


def test_token_delay_holds_the_token_response_while_other_endpoints_answer(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    params, verifier = rp.callback()
    idp.set(token_delay=1.0)
    done = threading.Event()
    result: list[httpx2.Response] = []

    def redeem() -> None:
        with httpx2.Client(timeout=10.0) as other:
            slow = RelyingParty(other, idp.issuer, redirect_uri=rp.redirect_uri)
            result.append(slow.redeem(params["code"], verifier))
        done.set()

    threading.Thread(target=redeem, daemon=True).start()
    assert rp.http.get(idp.discovery_url).status_code == 200
    assert not done.is_set()  # discovery answered while the token request still waits
    assert done.wait(10)
    assert result[0].status_code == 200


# -- the switch set itself -------------------------------------------------------------------


def test_unknown_switch_names_and_bad_values_are_refused(idp: IdpHandle) -> None:
    with pytest.raises(ValueError, match="unknown switches"):
        idp.set(wrong_issuer=True)
    with pytest.raises(ValueError, match="invalid value"):
        idp.set(token_failure_status=200)
    with pytest.raises(ValueError, match="invalid value"):
        idp.set(wrong_iss="yes")


def test_reset_turns_every_switch_off(idp: IdpHandle) -> None:
    idp.set(wrong_iss=True, token_delay=2.5, callback_error="access_denied")
    assert idp.switches.active() == {
        "wrong_iss": True,
        "token_delay": 2.5,
        "callback_error": "access_denied",
    }
    assert idp.reset() == Switches()


def test_every_switch_has_a_test_in_this_file() -> None:
    source = Path(__file__).read_text()
    untested = [n for n in sw.names() if f"{n}=" not in source and f'"{n}"' not in source]
    assert untested == []
