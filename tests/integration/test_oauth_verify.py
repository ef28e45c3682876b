"""`OAuthService.verify` (what the proxy calls on every JWT bearer) and signing-key rotation:
what verifies, what does not, and how replicas converge on rotated keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.oauth import TokenClaims, rotate_signing_key
from gatepass.store.oauth import SigningKey
from gatepass.store.types import utcnow
from tests.integration import test_oauth_support as support
from tests.integration.test_oauth_support import Issuer, IssuerFactory

make_issuer, issuer = support.make_issuer, support.issuer  # fixtures


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _verify(issuer: Issuer, token: str) -> TokenClaims | None:
    return issuer.run(issuer.service.verify(token))


def _claims(issuer: Issuer, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer.url,
        "sub": issuer.identity.public_id,
        "aud": "claude-desktop",
        "iat": now,
        "exp": now + 600,
        "sid": "family-1",
        "gatepass_key_id": issuer.identity.key_id,
        "email": "alice@corp.example",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _kids(issuer: Issuer) -> list[str]:
    return [k["kid"] for k in issuer.http.get("/oauth/jwks").json()["keys"]]


def test_verify_accepts_an_id_token(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    claims = _verify(issuer, tokens.id_token)
    assert claims is not None
    assert claims.token_use == "id"
    assert claims.subject == issuer.identity.public_id
    assert claims.key_id == issuer.identity.key_id
    assert claims.client_id == "claude-desktop"
    assert claims.email == "alice@corp.example"
    assert claims.family_id
    assert claims.expires_at > int(time.time())
    assert claims.auth_time == int(issuer.identity.auth_time.timestamp())


def test_verify_accepts_an_access_token_with_the_same_session(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    access, id_ = _verify(issuer, tokens.access_token), _verify(issuer, tokens.id_token)
    assert access is not None
    assert id_ is not None
    assert access.token_use == "access"
    assert access.client_id == "claude-desktop"
    assert access.family_id == id_.family_id
    assert access.key_id == id_.key_id
    assert access.scope == "openid profile email offline_access"


def test_verify_accepts_what_the_test_forger_signs_correctly(issuer: Issuer) -> None:
    # Guards the negative tests below: the forger itself produces valid tokens.
    assert _verify(issuer, issuer.service.minter.sign(_claims(issuer), "JWT")) is not None
    access = _claims(issuer, aud=issuer.url + "/anthropic", client_id="claude-desktop")
    assert _verify(issuer, issuer.service.minter.sign(access, "at+jwt")) is not None


@pytest.mark.parametrize(
    ("changes", "typ"),
    [
        ({"exp": int(time.time()) - 60}, "JWT"),  # expired
        ({"exp": None}, "JWT"),
        ({"exp": "tomorrow"}, "JWT"),
        ({"iat": int(time.time()) + 3600}, "JWT"),  # issued in the future
        ({"iss": "https://evil.example"}, "JWT"),
        ({"iss": None}, "JWT"),
        ({"aud": ["claude-desktop", "other"]}, "JWT"),
        ({"aud": "claude-desktop", "azp": "other"}, "JWT"),
        ({"aud": "RESOURCE"}, "JWT"),  # an id_token claiming the API as audience
        ({"aud": "claude-desktop", "client_id": "claude-desktop"}, "at+jwt"),  # wrong aud
        ({"aud": "RESOURCE"}, "at+jwt"),  # no client_id
        ({"aud": "RESOURCE", "client_id": "x"}, "application/jwt"),  # unknown typ
        ({"sub": None}, "JWT"),
        ({"sid": None}, "JWT"),
        ({"gatepass_key_id": None}, "JWT"),
        ({"gatepass_key_id": "7"}, "JWT"),
        ({"gatepass_key_id": True}, "JWT"),
    ],
)
def test_verify_refuses_tokens_with_bad_claims(
    issuer: Issuer, changes: dict[str, Any], typ: str
) -> None:
    if changes.get("aud") == "RESOURCE":
        changes["aud"] = issuer.url + "/anthropic"
    token = issuer.service.minter.sign(_claims(issuer, **changes), typ)
    assert _verify(issuer, token) is None


def test_verify_refuses_a_tampered_payload(issuer: Issuer) -> None:
    header, _, signature = issuer.tokens().id_token.split(".")
    forged = _b64(_claims(issuer, sub="someone-else"))
    assert _verify(issuer, f"{header}.{forged}.{signature}") is None


def test_verify_refuses_a_bad_signature(issuer: Issuer) -> None:
    token = issuer.tokens().id_token
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert _verify(issuer, f"{head}.{payload}.{flipped}") is None
    assert _verify(issuer, f"{head}.{payload}.") is None


def test_verify_refuses_alg_none(issuer: Issuer) -> None:
    kid = _kids(issuer)[0]
    header = _b64({"alg": "none", "typ": "JWT", "kid": kid})
    assert _verify(issuer, f"{header}.{_b64(_claims(issuer))}.") is None


def test_verify_refuses_hmac_keyed_with_the_public_key(issuer: Issuer) -> None:
    jwk = issuer.http.get("/oauth/jwks").json()["keys"][0]
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]})
    signing_input = f"{header}.{_b64(_claims(issuer))}"
    for secret in (json.dumps(jwk).encode(), jwk["n"].encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert _verify(issuer, f"{signing_input}.{_b64(mac)}") is None


def test_verify_refuses_unknown_kid_and_garbage(issuer: Issuer) -> None:
    token = issuer.tokens().id_token
    head, payload, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    unknown = _b64({**header, "kid": "no-such-kid"})
    assert _verify(issuer, f"{unknown}.{payload}.{signature}") is None
    no_kid = _b64({k: v for k, v in header.items() if k != "kid"})
    assert _verify(issuer, f"{no_kid}.{payload}.{signature}") is None
    for garbage in (
        "",
        "a.b",
        "a.b.c",
        "gp-virtualkey",
        "...",
        token + "." + signature,
        "x" * 9000,
    ):
        assert _verify(issuer, garbage) is None


def test_verify_refuses_a_token_of_another_issuer_instance(make_issuer: IssuerFactory) -> None:
    one, two = make_issuer(), make_issuer()
    assert _verify(two, one.tokens().id_token) is None


def test_rotation_keeps_old_tokens_valid_during_the_grace_period(issuer: Issuer) -> None:
    old_kid = _kids(issuer)[0]
    before = issuer.tokens()
    new_kid = issuer.run(issuer.service.rotate())
    assert new_kid != old_kid
    assert sorted(_kids(issuer)) == sorted([old_kid, new_kid])
    assert _verify(issuer, before.id_token) is not None
    after = issuer.tokens()
    header = json.loads(base64.urlsafe_b64decode(after.id_token.split(".")[0] + "=="))
    assert header["kid"] == new_kid
    assert _verify(issuer, after.id_token) is not None
    assert issuer.refresh(before.refresh_token).status_code == 200


def test_a_key_past_its_grace_no_longer_verifies_nor_is_published(
    make_issuer: IssuerFactory,
) -> None:
    issuer = make_issuer(sign_in={"signing_key_grace": 0})
    before = issuer.tokens()
    old_kid = _kids(issuer)[0]
    issuer.run(issuer.service.rotate())
    assert old_kid not in _kids(issuer)
    assert _verify(issuer, before.id_token) is None
    assert _verify(issuer, before.access_token) is None


def test_a_key_retired_in_the_database_stops_verifying_after_reload(issuer: Issuer) -> None:
    before = issuer.tokens()
    old_kid = _kids(issuer)[0]
    issuer.run(issuer.service.rotate())

    async def expire(session: AsyncSession) -> None:
        await session.exec(
            update(SigningKey)
            .where(SigningKey.kid == old_kid)
            .values(retire_after=utcnow() - timedelta(seconds=1))
        )

    issuer.store(expire)
    issuer.run(issuer.service.keys.reload())
    assert old_kid not in _kids(issuer)
    assert _verify(issuer, before.id_token) is None


def test_replicas_share_the_signing_key(make_issuer: IssuerFactory) -> None:
    first = make_issuer()
    second = make_issuer(database=first.extra["database"], public_url=first.url)
    assert _kids(first) == _kids(second)
    assert _verify(second, first.tokens().id_token) is not None


def test_a_replica_learns_a_rotated_key_from_an_unknown_kid(make_issuer: IssuerFactory) -> None:
    first = make_issuer()
    second = make_issuer(database=first.extra["database"], public_url=first.url)
    first.run(first.service.rotate())
    token = first.tokens().id_token
    assert _verify(second, token) is not None  # one reload, triggered by the new kid
    assert len(_kids(second)) == 2


def test_unknown_kid_reloads_are_rate_limited(make_issuer: IssuerFactory) -> None:
    first = make_issuer()
    second = make_issuer(database=first.extra["database"], public_url=first.url)
    assert _verify(second, first.service.minter.sign(_claims(first), "JWT")) is not None
    head, payload, signature = first.tokens().id_token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    assert _verify(second, f"{_b64({**header, 'kid': 'random-1'})}.{payload}.{signature}") is None
    # A rotation right after: the next unknown kid is within the reload interval, so no reload.
    first.run(first.service.rotate())
    assert _verify(second, first.tokens().id_token) is None


def test_rotate_signing_key_for_the_cli(issuer: Issuer) -> None:
    async def rotate(session: AsyncSession) -> str:
        return await rotate_signing_key(session, issuer.keyring, 3600)

    kid = issuer.store(rotate)

    async def rows(session: AsyncSession) -> list[SigningKey]:
        return list((await session.exec(select(SigningKey))).all())

    keys = {row.kid: row for row in issuer.store(rows)}
    assert keys[kid].active
    assert keys[kid].retire_after is None
    assert "-----" not in keys[kid].private_jwk_encrypted
    assert '"d"' not in keys[kid].private_jwk_encrypted  # encrypted at rest
    others = [row for row in keys.values() if row.kid != kid]
    assert len(others) == 1
    assert not others[0].active
    assert others[0].retire_after is not None
    # The running service picks it up on its next reload (or unknown kid).
    issuer.run(issuer.service.keys.reload())
    assert kid in _kids(issuer)
    assert _verify(issuer, issuer.tokens().id_token) is not None
