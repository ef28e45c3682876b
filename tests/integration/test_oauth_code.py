"""The authorization-code grant: one use, short life, bound to client, redirect URI and PKCE
verifier; concurrent redemptions give one token; a replay revokes what the first use issued.
Also client authentication at the token endpoint and the error shape."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.oauth import AuthorizationCode
from gatepass.store.types import utcnow
from tests.integration import test_oauth_support as support
from tests.integration.test_oauth_support import (
    WEB_APP,
    WEB_REDIRECT,
    Callback,
    Issuer,
    pkce,
)

make_issuer, issuer = support.make_issuer, support.issuer  # fixtures


def _assert_error(response: httpx2.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert set(body) == {"error", "error_description"}


def test_a_code_works_once(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    assert issuer.redeem(callback).status_code == 200
    _assert_error(issuer.redeem(callback), "invalid_grant")


def test_a_replayed_code_revokes_what_the_first_use_issued(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    first = issuer.redeem(callback).json()
    _assert_error(issuer.redeem(callback), "invalid_grant")
    _assert_error(issuer.refresh(first["refresh_token"]), "invalid_grant", 401)
    claims = issuer.run(issuer.service.verify(first["id_token"]))
    assert claims is not None  # the JWT itself still verifies; its family is what's revoked
    assert issuer.run(issuer.service.is_family_revoked(claims.family_id)) is True


def test_two_concurrent_redemptions_give_exactly_one_token(issuer: Issuer) -> None:
    for _ in range(3):
        callback = issuer.sign_in()

        async def race(callback: Callback = callback) -> list[httpx2.Response]:
            async with httpx2.AsyncClient(base_url=issuer.url, timeout=10) as client:
                form = {
                    "grant_type": "authorization_code",
                    "code": callback.params["code"],
                    "redirect_uri": str(callback.redirect_uri),
                    "client_id": "claude-desktop",
                    "code_verifier": callback.verifier,
                }
                return list(
                    await asyncio.gather(
                        *(client.post("/oauth/token", data=form) for _ in range(4))
                    )
                )

        responses = asyncio.run(race())
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 400, 400, 400]
        for response in responses:
            if response.status_code == 400:
                assert response.json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(issuer: Issuer) -> None:
    callback = issuer.sign_in()

    async def expire(session: AsyncSession) -> None:
        await session.exec(
            update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    issuer.store(expire)
    _assert_error(issuer.redeem(callback), "invalid_grant")


def test_a_code_is_bound_to_its_client(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    _assert_error(issuer.redeem(callback, client_id="ipv6-app"), "invalid_grant")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:53683/callback",  # another port than the authorize request's
        "http://127.0.0.1/callback",
        None,
    ],
)
def test_a_code_is_bound_to_its_exact_redirect_uri(
    issuer: Issuer, redirect_uri: str | None
) -> None:
    callback = issuer.sign_in()
    _assert_error(issuer.redeem(callback, redirect_uri=redirect_uri), "invalid_grant")


def test_a_wrong_pkce_verifier_is_refused(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    other, _ = pkce()
    _assert_error(issuer.redeem(callback, code_verifier=other), "invalid_grant")


def test_a_verifier_equal_to_the_challenge_is_refused(issuer: Issuer) -> None:
    # What a `plain` downgrade would need: the challenge itself as the verifier.
    callback = issuer.sign_in()
    challenge = issuer.broker.begun[-1][1]["code_challenge"]
    _assert_error(issuer.redeem(callback, code_verifier=challenge), "invalid_grant")


def test_a_missing_verifier_is_refused(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    _assert_error(issuer.redeem(callback, code_verifier=None), "invalid_request")


def test_an_unknown_code_is_refused(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    callback.params["code"] = "not-a-code"
    _assert_error(issuer.redeem(callback), "invalid_grant")


def test_a_public_client_must_name_itself(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    _assert_error(issuer.redeem(callback, client_id=None), "invalid_request")


def test_an_unknown_client_is_invalid_client(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    _assert_error(issuer.redeem(callback, client_id="nobody"), "invalid_client", 401)


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
    ],
)
def test_malformed_token_requests(issuer: Issuer, form: dict[str, str], error: str) -> None:
    _assert_error(
        issuer.http.post("/oauth/token", data={**form, "client_id": "claude-desktop"}), error
    )


def test_token_requests_must_be_form_encoded(issuer: Issuer) -> None:
    response = issuer.http.post(
        "/oauth/token", json={"grant_type": "authorization_code", "code": "x"}
    )
    _assert_error(response, "invalid_request")


def test_repeated_token_parameters_are_an_invalid_request(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    body = (
        f"grant_type=authorization_code&code={callback.params['code']}&code=other"
        f"&client_id=claude-desktop&code_verifier={callback.verifier}"
    )
    response = issuer.http.post(
        "/oauth/token",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    _assert_error(response, "invalid_request")


def test_unknown_token_parameters_are_ignored(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    response = issuer.redeem(callback, surface="claude_desktop", resource="whatever")
    assert response.status_code == 200


# confidential clients


def _web_callback(issuer: Issuer) -> Callback:
    return issuer.sign_in(client_id=WEB_APP, redirect_uri=WEB_REDIRECT)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


def _web_form(callback: Callback, **extra: str) -> dict[str, Any]:
    return {
        "grant_type": "authorization_code",
        "code": callback.params["code"],
        "redirect_uri": WEB_REDIRECT,
        "code_verifier": callback.verifier,
        **extra,
    }


def test_confidential_client_authenticates_with_basic(issuer: Issuer) -> None:
    callback = _web_callback(issuer)
    response = issuer.http.post(
        "/oauth/token", data=_web_form(callback), headers=_basic(WEB_APP, issuer.web_secret)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


def test_confidential_client_authenticates_with_post(issuer: Issuer) -> None:
    callback = _web_callback(issuer)
    form = _web_form(callback, client_id=WEB_APP, client_secret=issuer.web_secret)
    assert issuer.http.post("/oauth/token", data=form).status_code == 200


def test_wrong_basic_secret_is_invalid_client_with_a_challenge(issuer: Issuer) -> None:
    callback = _web_callback(issuer)
    response = issuer.http.post(
        "/oauth/token", data=_web_form(callback), headers=_basic(WEB_APP, "gpcs-wrong")
    )
    _assert_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_wrong_post_secret_is_invalid_client(issuer: Issuer) -> None:
    callback = _web_callback(issuer)
    form = _web_form(callback, client_id=WEB_APP, client_secret="gpcs-wrong")
    _assert_error(issuer.http.post("/oauth/token", data=form), "invalid_client", 401)


def test_confidential_client_without_secret_is_invalid_client(issuer: Issuer) -> None:
    callback = _web_callback(issuer)
    form = _web_form(callback, client_id=WEB_APP)
    _assert_error(issuer.http.post("/oauth/token", data=form), "invalid_client", 401)


def test_two_authentication_methods_at_once_are_refused(issuer: Issuer) -> None:
    callback = _web_callback(issuer)
    form = _web_form(callback, client_secret=issuer.web_secret)
    response = issuer.http.post(
        "/oauth/token", data=form, headers=_basic(WEB_APP, issuer.web_secret)
    )
    _assert_error(response, "invalid_request")


def test_malformed_basic_credentials_are_invalid_client(issuer: Issuer) -> None:
    callback = _web_callback(issuer)
    response = issuer.http.post(
        "/oauth/token", data=_web_form(callback), headers={"authorization": "Basic !!!"}
    )
    _assert_error(response, "invalid_client", 401)


def test_a_public_client_sending_a_secret_is_refused(issuer: Issuer) -> None:
    callback = issuer.sign_in()
    _assert_error(issuer.redeem(callback, client_secret="anything"), "invalid_client", 401)


def test_secret_of_another_client_does_not_authenticate(issuer: Issuer) -> None:
    callback = issuer.sign_in()  # a code for claude-desktop
    response = issuer.redeem(callback, client_id=None, client_secret=None)
    _assert_error(response, "invalid_request")
    response = issuer.http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": callback.params["code"],
            "redirect_uri": str(callback.redirect_uri),
            "code_verifier": callback.verifier,
        },
        headers=_basic(WEB_APP, issuer.web_secret),
    )
    _assert_error(response, "invalid_grant")  # bound to claude-desktop, not web-app


def test_a_user_disabled_before_redeeming_gets_no_tokens(issuer: Issuer) -> None:
    from gatepass.store.identity import User

    callback = issuer.sign_in()

    async def disable(session: AsyncSession) -> None:
        await session.exec(update(User).values(disabled=True))

    issuer.store(disable)
    _assert_error(issuer.redeem(callback), "invalid_grant")
    _assert_error(issuer.redeem(callback), "invalid_grant")  # and the code is spent
