"""The refresh-token grant: rotation, reuse detection, no forks under concurrency, client
binding, idle and absolute lifetimes, and the re-check that carries deprovisioning."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx2
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.identity import Recheck
from gatepass.store.oauth import RefreshToken
from gatepass.store.types import utcnow
from tests.integration import test_oauth_support as support
from tests.integration.test_oauth_support import Issuer, key_id, with_identity

make_issuer, issuer = support.make_issuer, support.issuer  # fixtures


def _refused(response: httpx2.Response) -> None:
    # 401, not RFC 6749's 400: the Claude apps gateway protocol's "sign in again" signal.
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"


def _claims(issuer: Issuer, token: str) -> dict[str, object]:
    keys = KeySet.import_key_set(issuer.http.get("/oauth/jwks").json())
    return dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)


def test_refresh_rotates_and_returns_a_new_id_token_every_time(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    seen_refresh = {tokens.refresh_token}
    seen_id = {tokens.id_token}
    current = tokens.body
    for _ in range(3):
        response = issuer.refresh(current["refresh_token"])
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        current = response.json()
        assert current["token_type"] == "Bearer"
        assert current["refresh_token"] not in seen_refresh
        assert current["id_token"] not in seen_id
        seen_refresh.add(current["refresh_token"])
        seen_id.add(current["id_token"])
    claims = _claims(issuer, current["id_token"])
    first = _claims(issuer, tokens.id_token)
    assert claims["sub"] == first["sub"]
    assert claims["aud"] == "claude-desktop"
    assert claims["sid"] == first["sid"]
    assert claims["auth_time"] == first["auth_time"]  # OIDC Core §12.2: original sign-in
    assert "nonce" not in claims
    assert [user for user, _ in issuer.broker.rechecks] == [issuer.identity.user_id] * 3


def test_reuse_of_a_spent_refresh_token_revokes_the_family(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    rotated = issuer.refresh(tokens.refresh_token).json()
    _refused(issuer.refresh(tokens.refresh_token))  # the spent one, again: theft assumed
    _refused(issuer.refresh(rotated["refresh_token"]))  # the family is gone
    claims = issuer.run(issuer.service.verify(rotated["access_token"]))
    assert claims is not None
    assert issuer.run(issuer.service.is_family_revoked(claims.family_id))


def test_reuse_does_not_touch_other_sessions(issuer: Issuer) -> None:
    one, two = issuer.tokens(), issuer.tokens()
    issuer.refresh(one.refresh_token)
    _refused(issuer.refresh(one.refresh_token))
    assert issuer.refresh(two.refresh_token).status_code == 200


def test_concurrent_reuse_cannot_fork_the_family(issuer: Issuer) -> None:
    tokens = issuer.tokens()

    async def race() -> list[httpx2.Response]:
        async with httpx2.AsyncClient(base_url=issuer.url, timeout=10) as client:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "client_id": "claude-desktop",
            }
            return list(
                await asyncio.gather(*(client.post("/oauth/token", data=form) for _ in range(4)))
            )

    responses = asyncio.run(race())
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) <= 1
    assert sum(r.status_code == 401 for r in responses) >= 3
    # Whatever the winner got belongs to a family that the losers revoked.
    for winner in winners:
        _refused(issuer.refresh(winner.json()["refresh_token"]))


def test_a_refresh_token_is_bound_to_its_client(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    _refused(issuer.refresh(tokens.refresh_token, client_id="ipv6-app"))
    assert issuer.refresh(tokens.refresh_token).status_code == 200  # not burnt by the attempt


def test_a_public_client_may_refresh_without_naming_itself(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    assert issuer.refresh(tokens.refresh_token, client_id=None).status_code == 200


def test_an_unknown_refresh_token_is_refused(issuer: Issuer) -> None:
    _refused(issuer.refresh("not-a-refresh-token"))


def _age(issuer: Issuer, **columns: object) -> None:
    async def action(session: AsyncSession) -> None:
        await session.exec(update(RefreshToken).values(**columns))

    issuer.store(action)


def test_an_idle_refresh_token_expires(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    _age(issuer, expires_at=utcnow() - timedelta(seconds=1))
    _refused(issuer.refresh(tokens.refresh_token))


def test_a_family_past_its_absolute_lifetime_expires(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    _age(issuer, family_expires_at=utcnow() - timedelta(seconds=1))
    _refused(issuer.refresh(tokens.refresh_token))


def test_idle_lifetime_never_outlives_the_absolute_one(make_issuer: support.IssuerFactory) -> None:
    issuer = make_issuer(sign_in={"refresh_token_idle_ttl": 3600, "refresh_token_absolute_ttl": 60})
    tokens = issuer.tokens()

    async def rows(session: AsyncSession) -> list[RefreshToken]:
        from sqlmodel import select

        return list((await session.exec(select(RefreshToken))).all())

    (row,) = issuer.store(rows)
    assert row.expires_at == row.family_expires_at
    assert issuer.refresh(tokens.refresh_token).status_code == 200
    new = [r for r in issuer.store(rows) if r.used_at is None]
    assert new[0].family_expires_at == row.family_expires_at  # absolute: never extended


def test_a_denied_recheck_ends_the_session(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    issuer.broker.recheck_result = Recheck("denied", reason="user removed from every group")
    response = issuer.refresh(tokens.refresh_token)
    _refused(response)
    assert "removed" in response.json()["error_description"]
    issuer.broker.recheck_result = None
    _refused(issuer.refresh(tokens.refresh_token))  # revoked, even once the user is back


def test_a_failing_recheck_is_a_retryable_error_that_keeps_the_token(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    issuer.broker.recheck_error = ConnectionError("IdP unreachable")
    response = issuer.refresh(tokens.refresh_token)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    issuer.broker.recheck_error = None
    assert issuer.refresh(tokens.refresh_token).status_code == 200


def test_refresh_carries_the_rechecked_key_and_groups(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    sales = issuer.store(lambda s: key_id(s, "sales-key"))
    issuer.broker.recheck_result = Recheck(
        "ok", identity=with_identity(issuer, key_id=sales, groups=("sales",))
    )
    body = issuer.refresh(tokens.refresh_token).json()
    claims = _claims(issuer, body["id_token"])
    assert claims["gatepass_key_id"] == sales
    assert claims["groups"] == ["sales"]
    verified = issuer.run(issuer.service.verify(body["access_token"]))
    assert verified is not None
    assert verified.key_id == sales
    # the next refresh token remembers the new key too
    issuer.broker.recheck_result = None
    assert issuer.refresh(body["refresh_token"]).status_code == 200


def test_refresh_may_narrow_but_not_widen_the_scope(issuer: Issuer) -> None:
    tokens = issuer.tokens(scope="openid email offline_access")
    narrowed = issuer.refresh(tokens.refresh_token, scope="openid")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "openid"
    wider = issuer.refresh(narrowed.json()["refresh_token"], scope="openid profile")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    # the refresh token keeps the original grant (RFC 6749 §6)
    again = issuer.refresh(narrowed.json()["refresh_token"])
    assert again.json()["scope"] == "openid email offline_access"
