"""The resource-server rules for IdP-issued tokens: audience, times, subjects, issuer peek."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx2
import pytest

from gatepass.policy.tokens import unverified_issuer
from gatepass.sso.discovery import Directory, ProviderMetadata
from gatepass.sso.errors import LoginError
from gatepass.sso.http import IdpHttp
from gatepass.sso.resource import check_times, match_audience, subjects

AUDIENCES = ["desktop-app", "api://gatepass"]


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"aud": "desktop-app"}, "desktop-app"),
        ({"aud": ["other", "api://gatepass"]}, "api://gatepass"),
        ({"aud": "other"}, None),
        # `aud` decides when present: the client the token went to does not override it
        ({"aud": "other-api", "azp": "desktop-app"}, None),
        ({"aud": "other-api", "client_id": "desktop-app"}, None),
        # only without `aud`, the client claims name who the token is for
        ({"azp": "desktop-app"}, "desktop-app"),
        ({"cid": "desktop-app"}, "desktop-app"),
        ({"client_id": "desktop-app"}, "desktop-app"),
        ({"azp": "someone-else", "client_id": "desktop-app"}, None),  # the first one present
        ({}, None),
    ],
)
def test_audience(claims: dict[str, Any], expected: str | None) -> None:
    assert match_audience(claims, AUDIENCES) == expected


def test_a_malformed_audience_is_refused() -> None:
    with pytest.raises(LoginError):
        match_audience({"aud": ["desktop-app", 7]}, AUDIENCES)


def test_times() -> None:
    now = 10_000.0
    assert check_times({"exp": now + 60, "iat": now}, leeway=30, now=now) == now + 60
    check_times({"exp": now - 20, "iat": now - 100}, leeway=30, now=now)  # within leeway
    check_times({"exp": now + 60, "iat": now + 20, "nbf": now + 20}, leeway=30, now=now)
    for bad in (
        {"exp": now - 31, "iat": now - 100},
        {"exp": now + 60, "iat": now + 31},
        {"exp": now + 60, "iat": now, "nbf": now + 31},
        {"iat": now},
        {"exp": now + 60},
        {"exp": True, "iat": now},
        {"exp": "soon", "iat": now},
    ):
        with pytest.raises(LoginError):
            check_times(bad, leeway=30, now=now)


def test_subjects() -> None:
    assert subjects({"sub": "abc"}) == ("abc",)
    assert subjects({"sub": "pairwise", "oid": "object-id", "tid": "tenant"}) == (
        "pairwise",
        "object-id",
    )
    assert subjects({"sub": "abc", "oid": "not-entra"}) == ("abc",)  # oid counts with tid only
    for bad in ({}, {"sub": ""}, {"sub": 5}, {"sub": "x" * 256}):
        with pytest.raises(LoginError):
            subjects(bad)


def _jwt(payload: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.sig"


def test_unverified_issuer() -> None:
    assert unverified_issuer(_jwt({"iss": "https://idp.example"})) == "https://idp.example"
    assert unverified_issuer(_jwt({"iss": 5})) is None
    assert unverified_issuer(_jwt(["iss"])) is None
    assert unverified_issuer("a.!!!.c") is None
    assert unverified_issuer("a.b") is None
    assert unverified_issuer(_jwt("[" * 5000)) is None  # not JSON (a string)
    deep = base64.urlsafe_b64encode(b"[" * 12_000).decode()
    assert unverified_issuer(f"a.{deep}.c") is None


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_failing_forced_refetch_is_rate_limited_too() -> None:
    """An IdP answering 500 to JWKS requests must not be asked again for every forged kid."""
    fetched: list[str] = []
    failing = False

    def handle(request: httpx2.Request) -> httpx2.Response:
        fetched.append(request.url.path)
        if failing:
            return httpx2.Response(500)
        return httpx2.Response(200, json={"keys": []})

    http = IdpHttp(httpx2.MockTransport(handle))
    await http.start()
    clock = Clock()
    directory = Directory(http, refetch_interval=30, clock=clock)
    metadata = ProviderMetadata(
        issuer="https://idp.example",
        authorization_endpoint="https://idp.example/authorize",
        token_endpoint="https://idp.example/token",
        jwks_uri="https://idp.example/jwks",
        userinfo_endpoint=None,
        iss_parameter_supported=False,
    )
    try:
        await directory.keys(metadata)
        failing = True
        with pytest.raises(LoginError):
            await directory.keys(metadata, refresh=True)
        for _ in range(5):
            assert await directory.keys(metadata, refresh=True) == ()  # the cached set
        assert fetched == ["/jwks", "/jwks"]
        clock.now += 31
        with pytest.raises(LoginError):
            await directory.keys(metadata, refresh=True)
        assert len(fetched) == 3
    finally:
        await http.stop()
