"""Redirect URI matching: exact, except any port on a loopback IP (RFC 8252 §7.3)."""

from __future__ import annotations

import pytest

from gatepass.oauth.redirects import match_redirect_uri

V4 = ["http://127.0.0.1/callback"]
V6 = ["http://[::1]/callback"]


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:53682/callback",
        "http://127.0.0.1:65535/callback",
    ],
)
def test_ipv4_loopback_redirect_matches_with_any_port(requested: str) -> None:
    assert match_redirect_uri(requested, V4) == requested


@pytest.mark.parametrize("requested", ["http://[::1]/callback", "http://[::1]:8123/callback"])
def test_ipv6_loopback_redirect_matches_with_any_port(requested: str) -> None:
    assert match_redirect_uri(requested, V6) == requested


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1.evil.com/callback",
        "http://127.0.0.1.evil.com:8080/callback",
        "http://127.0.0.1:8080/callback/extra",
        "http://127.0.0.1:8080/callback/",
        "http://127.0.0.1:8080/Callback",
        "http://127.0.0.1:8080/callback?x=1",
        "http://127.0.0.1:8080/callback#frag",
        "https://127.0.0.1/callback",
        "https://127.0.0.1:8080/callback",
        "http://localhost/callback",
        "http://localhost:8080/callback",
        "http://[::1]:8080/callback",
        "http://127.0.0.1@evil.com/callback",
        "http://evil.com@127.0.0.1/callback",
        "http://user:pw@127.0.0.1:8080/callback",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:80x/callback",
        "http://127.0.0.2/callback",
        "http://127.1/callback",
        "http://0x7f000001/callback",
        "http://127.0.0.1:8080\\@evil.com/callback",
        "http://127.0.0.1:8080/callback\n",
        " http://127.0.0.1/callback",
        "HTTP://127.0.0.1:8080/callback",
        "//127.0.0.1/callback",
        "/callback",
        "",
    ],
)
def test_redirect_uri_abuse_is_refused(requested: str) -> None:
    assert match_redirect_uri(requested, V4) is None


def test_non_loopback_uris_match_only_exactly() -> None:
    registered = ["https://app.example/cb"]
    assert match_redirect_uri("https://app.example/cb", registered) == "https://app.example/cb"
    for near in (
        "https://app.example:443/cb",
        "https://app.example/cb/",
        "https://APP.example/cb",
        "http://app.example/cb",
        "https://app.example/cb?x=1",
    ):
        assert match_redirect_uri(near, registered) is None


def test_localhost_registration_allows_any_port_on_localhost_only() -> None:
    registered = ["http://localhost/cb"]
    assert match_redirect_uri("http://localhost:9999/cb", registered) == "http://localhost:9999/cb"
    assert match_redirect_uri("http://127.0.0.1:9999/cb", registered) is None


def test_a_registered_query_must_be_repeated_exactly() -> None:
    registered = ["http://127.0.0.1/cb?app=desktop"]
    assert match_redirect_uri("http://127.0.0.1:5/cb?app=desktop", registered) is not None
    assert match_redirect_uri("http://127.0.0.1:5/cb", registered) is None
    assert match_redirect_uri("http://127.0.0.1:5/cb?app=other", registered) is None


def test_missing_redirect_uri_is_allowed_only_with_one_registered() -> None:
    assert match_redirect_uri(None, V4) == V4[0]
    assert match_redirect_uri(None, ["http://127.0.0.1/a", "http://127.0.0.1/b"]) is None
    assert match_redirect_uri(None, []) is None


def test_private_use_scheme_matches_exactly() -> None:
    registered = ["com.example.app:/oauth2redirect"]
    assert match_redirect_uri("com.example.app:/oauth2redirect", registered) is not None
    assert match_redirect_uri("com.example.app:/oauth2redirect/x", registered) is None
