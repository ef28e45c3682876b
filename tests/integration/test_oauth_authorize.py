"""`/oauth/authorize` refusals: the client and redirect URI are refused on a page (never a
redirect); every other error goes back to the client with `error`, `state` and `iss`."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from tests.integration import test_oauth_support as support
from tests.integration.test_oauth_support import IPV6_APP, TWO_URIS, Issuer, continue_target

make_issuer, issuer = support.make_issuer, support.issuer  # fixtures


def _error_redirect(response: httpx2.Response, issuer: Issuer) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:53682/callback?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert params["iss"] == issuer.url  # RFC 9207
    assert "code" not in params
    return params


def _refused_without_redirect(response: httpx2.Response, issuer: Issuer) -> None:
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert "evil" not in response.text
    assert issuer.broker.begun == []


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1.evil.com/callback",
        "http://127.0.0.1:8080/callback/extra",
        "https://127.0.0.1/callback",
        "http://localhost/callback",
        "http://127.0.0.1@evil.com/callback",
        "http://evil.com/callback",
        "http://[::1]:8080/callback",
    ],
)
def test_bad_redirect_uri_is_refused_without_redirect(issuer: Issuer, redirect_uri: str) -> None:
    _refused_without_redirect(issuer.authorize(redirect_uri=redirect_uri), issuer)


@pytest.mark.parametrize("client_id", ["unknown-app", None])
def test_unknown_or_missing_client_is_refused_without_redirect(
    issuer: Issuer, client_id: str | None
) -> None:
    _refused_without_redirect(issuer.authorize(client_id=client_id), issuer)


def test_repeated_redirect_uri_is_refused_without_redirect(issuer: Issuer) -> None:
    response = issuer.http.get(
        "/oauth/authorize",
        params=[
            ("client_id", "claude-desktop"),
            ("redirect_uri", "http://127.0.0.1:1/callback"),
            ("redirect_uri", "http://evil.example/callback"),
        ],
    )
    _refused_without_redirect(response, issuer)


def test_loopback_redirect_with_any_port_is_accepted(issuer: Issuer) -> None:
    for port in (1024, 49152, 65535):
        callback = issuer.sign_in(redirect_uri=f"http://127.0.0.1:{port}/callback")
        assert callback.url.startswith(f"http://127.0.0.1:{port}/callback?code=")


def test_ipv6_loopback_redirect_with_any_port_is_accepted(issuer: Issuer) -> None:
    callback = issuer.sign_in(client_id=IPV6_APP, redirect_uri="http://[::1]:43210/callback")
    assert callback.url.startswith("http://[::1]:43210/callback?code=")


def test_missing_redirect_uri_uses_the_only_registered_one(issuer: Issuer) -> None:
    response = issuer.authorize(redirect_uri=None)
    assert continue_target(response.text).startswith("http://127.0.0.1/callback?code=")


def test_missing_redirect_uri_is_refused_when_several_are_registered(issuer: Issuer) -> None:
    _refused_without_redirect(issuer.authorize(client_id=TWO_URIS, redirect_uri=None), issuer)


def test_code_for_an_omitted_redirect_uri_is_redeemed_without_one(issuer: Issuer) -> None:
    callback = issuer.sign_in(redirect_uri=None)
    assert callback.redirect_uri is None
    assert issuer.redeem(callback).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # defaults to plain
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": "s256"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"code_challenge": "a" * 42 + "="}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"scope": "profile email"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"prompt": "none"}, "login_required"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://evil.example/req"}, "request_uri_not_supported"),
        ({"resource": "https://other.example/api"}, "invalid_target"),
        ({"nonce": "n" * 501}, "invalid_request"),
    ],
)
def test_invalid_requests_go_back_to_the_client_with_state_and_iss(
    issuer: Issuer, overrides: dict[str, str | None], error: str
) -> None:
    params = _error_redirect(issuer.authorize(state="keep-me", **overrides), issuer)
    assert params["error"] == error
    assert params["error_description"]
    assert params["state"] == "keep-me"
    assert issuer.broker.begun == []


def test_error_redirect_response_is_not_cached(issuer: Issuer) -> None:
    response = issuer.authorize(code_challenge_method="plain")
    assert response.headers["cache-control"] == "no-store"


def test_repeated_parameters_are_an_invalid_request(issuer: Issuer) -> None:
    response = issuer.http.get(
        "/oauth/authorize",
        params=[
            ("client_id", "claude-desktop"),
            ("redirect_uri", "http://127.0.0.1:53682/callback"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("scope", "openid email"),
            ("state", "s1"),
        ],
    )
    params = _error_redirect(response, issuer)
    assert params["error"] == "invalid_request"
    assert params["state"] == "s1"


def test_resource_of_the_anthropic_api_is_accepted(issuer: Issuer) -> None:
    callback = issuer.sign_in(resource=issuer.url + "/anthropic")
    assert "code" in callback.params


def test_prompt_login_is_accepted(issuer: Issuer) -> None:
    assert "code" in issuer.sign_in(prompt="login consent").params


def test_state_is_echoed_exactly_and_is_optional(issuer: Issuer) -> None:
    odd = "a b&c=d/é"
    assert issuer.sign_in(state=odd).params["state"] == odd
    assert "state" not in issuer.sign_in(state=None).params


def test_a_client_removed_during_sign_in_gets_no_code(issuer: Issuer) -> None:
    from gatepass.manage import identity as identity_ops

    original = issuer.broker.begin

    async def remove_then_complete(request, **kwargs):  # type: ignore[no-untyped-def]
        async with issuer.gateway.sessions() as session:
            await identity_ops.remove_client(session, client_id="claude-desktop")
            await session.commit()
        return await original(request, **kwargs)

    issuer.broker.begin = remove_then_complete  # type: ignore[method-assign]
    response = issuer.authorize()
    assert response.status_code == 400
    assert "code=" not in response.text
