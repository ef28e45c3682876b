"""Token endpoint and authorization request rules: PKCE, codes, clients, refresh, revocation."""

from __future__ import annotations

import threading

import httpx2
import pytest
from idp_dev import Client, IdpHandle
from idp_dev.testing import RelyingParty, callback_params, pkce_pair, sign_in


def _authorize_error(http: httpx2.Client, url: str) -> dict[str, str]:
    response = http.get(url)
    assert response.status_code == 302
    return callback_params(response.headers["location"])


def test_authorization_without_pkce_is_refused_when_required(
    http: httpx2.Client, rp: RelyingParty
) -> None:
    params = _authorize_error(http, rp.authorize_url(None))
    assert params["error"] == "invalid_request"
    assert params["state"] == "state-123"


def test_plain_pkce_is_refused_when_pkce_is_required(http: httpx2.Client, rp: RelyingParty) -> None:
    url = rp.authorize_url(None) + "&code_challenge=" + "p" * 43 + "&code_challenge_method=plain"
    params = _authorize_error(http, url)
    assert params["error"] == "invalid_request"
    assert "plain" in params["error_description"]


def test_plain_pkce_and_no_pkce_work_for_a_client_that_does_not_require_it(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    idp.add_client(
        Client(
            client_id="legacy",
            client_secret="legacy-secret",
            redirect_uris=("http://127.0.0.1:9999/cb",),
            require_pkce=False,
        )
    )
    rp = RelyingParty(
        http, idp.issuer, client_id="legacy", client_secret="legacy-secret",
        redirect_uri="http://127.0.0.1:9999/cb",
    )  # fmt: skip
    verifier = "v" * 43
    url = rp.authorize_url(None) + f"&code_challenge={verifier}&code_challenge_method=plain"
    location = sign_in(http, url, login="bob@corp.example", password="bob-password")
    assert rp.redeem(callback_params(location)["code"], verifier).status_code == 200
    location = sign_in(http, rp.authorize_url(None), login="bob@corp.example", password="x")
    assert rp.redeem(callback_params(location)["code"], None).status_code == 200


@pytest.mark.parametrize("verifier", [None, "w" * 43, "short"])
def test_code_is_refused_without_the_matching_verifier(
    rp: RelyingParty, verifier: str | None
) -> None:
    params, _ = rp.callback()
    response = rp.redeem(params["code"], verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"


def test_code_is_single_use_and_a_replay_revokes_what_it_issued(rp: RelyingParty) -> None:
    params, verifier = rp.callback()
    first = rp.redeem(params["code"], verifier).json()
    replay = rp.redeem(params["code"], verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert rp.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    userinfo = rp.http.get(
        f"{rp.issuer}/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert userinfo.status_code == 401


def test_code_expires(idp: IdpHandle, rp: RelyingParty) -> None:
    params, verifier = rp.callback()
    idp.advance_clock(61)
    assert rp.redeem(params["code"], verifier).json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_client(idp: IdpHandle, http: httpx2.Client, rp: RelyingParty) -> None:
    params, verifier = rp.callback()
    other = RelyingParty(
        http, idp.issuer, client_id="consenting", client_secret="consent-secret",
        redirect_uri=rp.redirect_uri,
    )  # fmt: skip
    assert other.redeem(params["code"], verifier).json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_redirect_uri(rp: RelyingParty) -> None:
    params, verifier = rp.callback()
    rp.redirect_uri = "http://127.0.0.1:8766/auth/callback"
    assert rp.redeem(params["code"], verifier).json()["error"] == "invalid_grant"


def test_successful_token_response_is_not_cacheable(rp: RelyingParty) -> None:
    params, verifier = rp.callback()
    response = rp.redeem(params["code"], verifier)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def test_wrong_basic_secret_gives_401_with_a_basic_challenge(rp: RelyingParty) -> None:
    params, verifier = rp.callback()
    rp.client_secret = "wrong"
    response = rp.redeem(params["code"], verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_wrong_posted_secret_is_invalid_client(rp: RelyingParty) -> None:
    params, verifier = rp.callback()
    rp.auth_method, rp.client_secret = "client_secret_post", "wrong"
    response = rp.redeem(params["code"], verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unknown_client_is_invalid_client(idp: IdpHandle, http: httpx2.Client) -> None:
    response = http.post(
        f"{idp.issuer}/token",
        data={"grant_type": "authorization_code", "code": "x"},
        auth=("nobody", "secret"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_confidential_client_cannot_skip_its_secret(rp: RelyingParty) -> None:
    params, verifier = rp.callback()
    rp.auth_method = "none"
    response = rp.redeem(params["code"], verifier)
    assert response.json()["error"] == "invalid_client"


def test_two_authentication_methods_at_once_are_refused(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    response = http.post(
        f"{idp.issuer}/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_secret": "s"},
        auth=("gatepass", "gatepass-dev-secret"),
    )
    assert response.json()["error"] == "invalid_request"


def test_repeated_parameters_are_refused(idp: IdpHandle, http: httpx2.Client) -> None:
    response = http.post(
        f"{idp.issuer}/token",
        content="grant_type=refresh_token&refresh_token=a&refresh_token=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=("gatepass", "gatepass-dev-secret"),
    )
    assert response.json()["error"] == "invalid_request"


def test_unknown_grant_type_is_refused(rp: RelyingParty) -> None:
    response = rp.token_request({"grant_type": "password", "username": "a", "password": "b"})
    assert response.json()["error"] == "unsupported_grant_type"


def test_refresh_rotates_and_the_old_token_stops_working(rp: RelyingParty) -> None:
    first = rp.login()
    second = rp.refresh(first["refresh_token"])
    assert second.status_code == 200
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert rp.refresh(body["refresh_token"]).status_code == 200


def test_refresh_token_reuse_revokes_the_family(rp: RelyingParty) -> None:
    first = rp.login()
    second = rp.refresh(first["refresh_token"]).json()
    reuse = rp.refresh(first["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    assert rp.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"


def test_refreshed_id_token_keeps_auth_time_and_has_no_nonce(rp: RelyingParty) -> None:
    first = rp.login()
    original = rp.verify(first["id_token"]).claims
    refreshed = rp.verify(rp.refresh(first["refresh_token"]).json()["id_token"]).claims
    assert refreshed["auth_time"] == original["auth_time"]
    assert refreshed["sub"] == original["sub"]
    assert "nonce" not in refreshed


def test_refresh_token_is_bound_to_its_client(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    first = rp.login()
    other = RelyingParty(http, idp.issuer, client_id="consenting", client_secret="consent-secret")
    assert other.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_token_expires(idp: IdpHandle, rp: RelyingParty) -> None:
    first = rp.login()
    idp.advance_clock(86400 + 1)
    assert rp.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_cannot_widen_the_scope(rp: RelyingParty) -> None:
    first = rp.login(scope="openid email")
    response = rp.token_request(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
         "scope": "openid email groups"}
    )  # fmt: skip
    assert response.json()["error"] == "invalid_scope"


def test_group_change_at_the_idp_shows_up_on_refresh(idp: IdpHandle, rp: RelyingParty) -> None:
    first = rp.login()
    idp.update_user("alice@corp.example", groups=["engineering"])
    refreshed = rp.refresh(first["refresh_token"]).json()
    assert rp.verify(refreshed["id_token"]).claims["groups"] == ["engineering"]
    assert rp.verify(refreshed["access_token"]).claims["groups"] == ["engineering"]


def test_disabled_user_cannot_refresh_use_userinfo_or_sign_in(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    first = rp.login()
    idp.disable_user("alice@corp.example")
    refresh = rp.refresh(first["refresh_token"])
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"
    userinfo = http.get(
        f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert userinfo.status_code == 401
    _, challenge = pkce_pair()
    # The session is gone too: the form is shown, and the password no longer works.
    page = http.get(rp.authorize_url(challenge))
    assert page.status_code == 200
    with pytest.raises(AssertionError, match="sign-in did not finish"):
        rp.callback()
    idp.enable_user("alice@corp.example")
    assert "id_token" in rp.login()


def test_revoking_a_refresh_token_ends_its_family(rp: RelyingParty) -> None:
    body = rp.login()
    response = rp.http.post(
        f"{rp.issuer}/revoke",
        data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
        auth=("gatepass", "gatepass-dev-secret"),
    )
    assert response.status_code == 200
    assert rp.refresh(body["refresh_token"]).json()["error"] == "invalid_grant"
    userinfo = rp.http.get(
        f"{rp.issuer}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert userinfo.status_code == 401


def test_revoking_an_access_token_keeps_the_refresh_token(rp: RelyingParty) -> None:
    body = rp.login()
    rp.http.post(
        f"{rp.issuer}/revoke",
        data={"token": body["access_token"]},
        auth=("gatepass", "gatepass-dev-secret"),
    )
    userinfo = rp.http.get(
        f"{rp.issuer}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert userinfo.status_code == 401
    assert rp.refresh(body["refresh_token"]).status_code == 200


def test_another_client_cannot_revoke_a_token(
    idp: IdpHandle, http: httpx2.Client, rp: RelyingParty
) -> None:
    body = rp.login()
    response = http.post(
        f"{idp.issuer}/revoke",
        data={"token": body["refresh_token"]},
        auth=("consenting", "consent-secret"),
    )
    assert response.status_code == 200
    assert rp.refresh(body["refresh_token"]).status_code == 200


def test_revoking_an_unknown_token_is_not_an_error(rp: RelyingParty) -> None:
    response = rp.http.post(
        f"{rp.issuer}/revoke", data={"token": "nope"}, auth=("gatepass", "gatepass-dev-secret")
    )
    assert response.status_code == 200


def test_unknown_client_at_authorize_gets_an_error_page_not_a_redirect(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    response = http.get(
        f"{idp.issuer}/authorize",
        params={"client_id": "nobody", "redirect_uri": "https://evil.example/cb"},
    )
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/auth/callback",
        "http://127.0.0.1.evil.example/auth/callback",
        "https://127.0.0.1:8765/auth/callback",
        "http://127.0.0.1:8765/auth/callback/extra",
        "http://127.0.0.1:8765/auth/callback?x=1",
        "http://evil@127.0.0.1:8765/auth/callback",
        "http://127.0.0.1:8765/auth/callback#frag",
        "http://127.0.0.2:8765/auth/callback",
        "http://127.0.0.1:8x/auth/callback",
        "",
    ],
)
def test_unregistered_redirect_uris_are_refused_without_redirecting(
    http: httpx2.Client, rp: RelyingParty, redirect_uri: str
) -> None:
    rp.redirect_uri = redirect_uri
    _, challenge = pkce_pair()
    response = http.get(rp.authorize_url(challenge))
    assert response.status_code == 400
    assert "location" not in response.headers


def test_loopback_redirect_uri_may_use_any_port_when_the_client_allows_it(
    http: httpx2.Client, rp: RelyingParty
) -> None:
    rp.redirect_uri = "http://127.0.0.1:50123/auth/callback"
    params, verifier = rp.callback()
    assert rp.redeem(params["code"], verifier).status_code == 200


def test_exact_match_client_refuses_another_loopback_port(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    rp = RelyingParty(
        http, idp.issuer, client_id="cli", client_secret=None,
        redirect_uri="http://127.0.0.1:7778/cb",
    )  # fmt: skip
    _, challenge = pkce_pair()
    assert http.get(rp.authorize_url(challenge)).status_code == 400


def test_unsupported_response_type_is_reported_by_redirect(
    http: httpx2.Client, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    url = rp.authorize_url(challenge).replace("response_type=code", "response_type=token")
    assert _authorize_error(http, url)["error"] == "unsupported_response_type"


def test_two_concurrent_redemptions_of_one_code_give_exactly_one_token(
    idp: IdpHandle, rp: RelyingParty
) -> None:
    params, verifier = rp.callback()
    barrier = threading.Barrier(2, timeout=10)
    statuses: list[int] = []

    def redeem() -> None:
        with httpx2.Client(timeout=10.0) as http:
            racer = RelyingParty(http, idp.issuer, redirect_uri=rp.redirect_uri)
            barrier.wait()
            statuses.append(racer.redeem(params["code"], verifier).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(statuses) == [200, 400]
