"""ID-token validation and the metadata/JWKS cache, against an in-process IdP (MockTransport)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

from gatepass.sso.discovery import Directory, parse_metadata
from gatepass.sso.errors import LoginError
from gatepass.sso.http import IdpHttp
from gatepass.sso.id_token import Expected, check_claims, validate_id_token

ISSUER = "https://idp.example"
CLIENT = "gatepass"


@dataclass
class FakeIdp:
    """Discovery and JWKS, served through a MockTransport; counts what is fetched."""

    keys: list[Key]
    issuer: str = ISSUER
    fetched: list[str] = field(default_factory=list)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.fetched.append(request.url.path)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx2.Response(
                200,
                json={
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if request.url.path == "/jwks":
            return httpx2.Response(
                200, json={"keys": [k.as_dict(private=False) for k in self.keys]}
            )
        return httpx2.Response(404)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def ec(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"})


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-123",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, body: dict[str, Any], alg: str = "RS256", **header: Any) -> str:
    head = {"alg": alg, "kid": key.kid, **header}
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, body, key, algorithms=[alg])


EXPECTED = Expected(issuer=ISSUER, client_id=CLIENT, leeway=60, nonce="n-123")


@pytest.fixture
async def http_for() -> AsyncIterator[Any]:
    clients: list[IdpHttp] = []

    async def make(idp: FakeIdp) -> IdpHttp:
        http = IdpHttp(httpx2.MockTransport(idp.handle))
        await http.start()
        clients.append(http)
        return http

    yield make
    for http in clients:
        await http.stop()


async def validate(
    token: str, directory: Directory, expected: Expected = EXPECTED
) -> dict[str, Any]:
    metadata = await directory.metadata(ISSUER)
    return await validate_id_token(
        token, directory=directory, metadata=metadata, expected=expected, now=time.time()
    )


async def refusal(token: str, directory: Directory, expected: Expected = EXPECTED) -> str:
    with pytest.raises(LoginError) as raised:
        await validate(token, directory, expected)
    return raised.value.reason


async def test_a_good_token_validates(http_for: Any) -> None:
    key = rsa("k1")
    directory = Directory(await http_for(FakeIdp([key, ec("k2")])))
    assert (await validate(sign(key, claims()), directory))["sub"] == "alice"


async def test_es256_tokens_validate(http_for: Any) -> None:
    key = ec("k2")
    directory = Directory(await http_for(FakeIdp([rsa("k1"), key])))
    assert await validate(sign(key, claims(), alg="ES256"), directory)


async def test_forged_algorithms_are_refused(http_for: Any) -> None:
    key = rsa("k1")
    directory = Directory(await http_for(FakeIdp([key])))
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    for alg in ("none", "HS256", "HS512", "RSA-OAEP", ""):
        header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "kid": "k1"}).encode()).rstrip(
            b"="
        )
        token = f"{header.decode()}.{body}.c2ln"
        assert await refusal(token, directory) == "id_token_algorithm", alg
    # HMAC keyed with the public key's PEM, the classic confusion forgery (joserfc itself
    # refuses to build such a key, so sign by hand)
    hs_header = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    signing_input = f"{hs_header}.{body}"
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(mac)}"
    assert await refusal(forged, directory) == "id_token_algorithm"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_an_rsa_token_claiming_an_ec_key_is_refused(http_for: Any) -> None:
    rsa_key, ec_key = rsa("k1"), ec("k2")
    directory = Directory(await http_for(FakeIdp([rsa_key, ec_key])))
    token = sign(rsa_key, claims(), kid="k2")
    assert await refusal(token, directory) == "id_token_key_mismatch"


async def test_no_kid_is_fine_with_exactly_one_key_and_refused_with_several(
    http_for: Any,
) -> None:
    key = rsa("k1")
    single = Directory(await http_for(FakeIdp([key])))
    assert await validate(sign(key, claims(), kid=None), single)
    several = Directory(await http_for(FakeIdp([key, rsa("k3")])))
    assert await refusal(sign(key, claims(), kid=None), several) == "id_token_no_kid"


async def test_an_access_token_is_not_an_id_token(http_for: Any) -> None:
    key = rsa("k1")
    directory = Directory(await http_for(FakeIdp([key])))
    assert await refusal(sign(key, claims(), typ="at+jwt"), directory) == "id_token_type"


async def test_garbage_is_refused(http_for: Any) -> None:
    directory = Directory(await http_for(FakeIdp([rsa("k1")])))
    for token in ("", "a.b", "a.b.c", "éé.é.é", "x" * 10):
        assert await refusal(token, directory) == "id_token_malformed"


async def test_unknown_kid_refetches_once_per_interval(http_for: Any) -> None:
    old, new = rsa("old"), rsa("new")
    idp = FakeIdp([old])
    clock = Clock()
    directory = Directory(await http_for(idp), clock=clock, refetch_interval=30)
    assert await validate(sign(old, claims()), directory)
    idp.keys = [old, new]
    assert await validate(sign(new, claims()), directory)  # rotated: one refetch
    assert idp.fetched.count("/jwks") == 2
    for _ in range(3):
        assert await refusal(sign(rsa("bogus"), claims()), directory) == "id_token_unknown_kid"
    assert idp.fetched.count("/jwks") == 2  # the refetch budget is spent
    clock.now += 30
    assert await refusal(sign(rsa("bogus"), claims()), directory) == "id_token_unknown_kid"
    assert idp.fetched.count("/jwks") == 3


async def test_metadata_and_keys_expire_after_their_ttl(http_for: Any) -> None:
    key = rsa("k1")
    idp = FakeIdp([key])
    clock = Clock()
    directory = Directory(await http_for(idp), clock=clock, ttl=3600)
    await validate(sign(key, claims()), directory)
    await validate(sign(key, claims()), directory)
    assert idp.fetched == ["/.well-known/openid-configuration", "/jwks"]
    clock.now += 3600
    await validate(sign(key, claims()), directory)
    assert idp.fetched.count("/jwks") == 2
    assert idp.fetched.count("/.well-known/openid-configuration") == 2


async def test_a_discovery_document_naming_another_issuer_is_refused(http_for: Any) -> None:
    directory = Directory(await http_for(FakeIdp([rsa("k1")], issuer="https://evil.example")))
    with pytest.raises(LoginError) as raised:
        await directory.metadata(ISSUER)
    assert raised.value.reason == "discovery_issuer_mismatch"


def test_discovery_needs_the_endpoints_and_reads_rfc_9207_support() -> None:
    base = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/a",
        "token_endpoint": f"{ISSUER}/t",
        "jwks_uri": f"{ISSUER}/j",
    }
    assert not parse_metadata(base, issuer=ISSUER).iss_parameter_supported
    flagged = {**base, "authorization_response_iss_parameter_supported": True}
    assert parse_metadata(flagged, issuer=ISSUER).iss_parameter_supported
    for missing in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        with pytest.raises(LoginError):
            parse_metadata({k: v for k, v in base.items() if k != missing}, issuer=ISSUER)
    with pytest.raises(LoginError):
        parse_metadata({**base, "issuer": ISSUER + "/"}, issuer=ISSUER)


async def test_unusable_jwks_entries_are_skipped_not_fatal(http_for: Any) -> None:
    key = rsa("k1")

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/jwks":
            keys = [
                {"kty": "oct", "k": "c2VjcmV0", "kid": "k1"},
                {"kty": "RSA", "kid": "broken", "n": "x"},
                {**key.as_dict(private=False), "use": "enc", "kid": "enc"},
                key.as_dict(private=False),
            ]
            return httpx2.Response(200, json={"keys": keys})
        return FakeIdp([key]).handle(request)

    http = IdpHttp(httpx2.MockTransport(handle))
    await http.start()
    try:
        directory = Directory(http)
        keys = await directory.keys(await directory.metadata(ISSUER))
        assert [k.kid for k in keys] == ["k1"]
        assert isinstance(keys[0], RSAKey)
    finally:
        await http.stop()


async def test_idp_server_errors_and_network_failures_are_unavailability() -> None:
    from gatepass.sso.errors import IdpUnavailable

    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    for transport in (
        httpx2.MockTransport(lambda r: httpx2.Response(503)),
        httpx2.MockTransport(down),
    ):
        http = IdpHttp(transport)
        await http.start()
        try:
            with pytest.raises(IdpUnavailable):
                await Directory(http).metadata(ISSUER)
        finally:
            await http.stop()


# The claim checks, one rule at a time (OIDC Core §3.1.3.7).

NOW = 1_700_000_000.0


def base_claims(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "alice",
        "iat": NOW,
        "exp": NOW + 300,
        "nonce": "n-123",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def reason(body: dict[str, Any], expected: Expected = EXPECTED) -> str | None:
    try:
        check_claims(body, expected, now=NOW)
    except LoginError as error:
        return error.reason
    return None


@pytest.mark.parametrize(
    ("changes", "expected_reason"),
    [
        ({}, None),
        ({"iss": ISSUER + "/"}, "id_token_issuer"),
        ({"iss": None}, "id_token_issuer"),
        ({"aud": "other"}, "id_token_audience"),
        ({"aud": None}, "id_token_audience"),
        ({"aud": [CLIENT]}, None),
        ({"aud": [CLIENT, "other"]}, "id_token_azp"),
        ({"aud": [CLIENT, "other"], "azp": CLIENT}, "id_token_audience"),
        ({"aud": [CLIENT, "other"], "azp": "other"}, "id_token_azp"),
        ({"azp": "other"}, "id_token_azp"),
        ({"azp": CLIENT}, None),
        ({"aud": [CLIENT, 3]}, "id_token_audience"),
        ({"exp": NOW - 61}, "id_token_expired"),
        ({"exp": NOW - 59}, None),
        ({"exp": None}, "id_token_claims"),
        ({"exp": "soon"}, "id_token_claims"),
        ({"exp": True}, "id_token_claims"),
        ({"iat": NOW + 61}, "id_token_iat"),
        ({"iat": NOW + 59}, None),
        ({"iat": None}, "id_token_claims"),
        ({"nbf": NOW + 61}, "id_token_nbf"),
        ({"nbf": NOW}, None),
        ({"sub": None}, "id_token_subject"),
        ({"sub": ""}, "id_token_subject"),
        ({"sub": 7}, "id_token_subject"),
        ({"nonce": None}, "id_token_nonce"),
        ({"nonce": "n-124"}, "id_token_nonce"),
        ({"nonce": 5}, "id_token_nonce"),
    ],
)
def test_claim_rules(changes: dict[str, Any], expected_reason: str | None) -> None:
    assert reason(base_claims(**changes)) == expected_reason


def test_on_refresh_the_nonce_is_not_required_but_the_subject_must_not_change() -> None:
    refresh = Expected(issuer=ISSUER, client_id=CLIENT, leeway=60, subject="alice")
    assert reason(base_claims(nonce=None), refresh) is None
    assert reason(base_claims(sub="bob", nonce=None), refresh) == "id_token_subject"
