"""`/oauth/revoke` (RFC 7009): a refresh token or a Gatepass JWT ends its whole session."""

from __future__ import annotations

import base64

import httpx2
import pytest

from tests.integration import test_oauth_support as support
from tests.integration.test_oauth_support import WEB_APP, Issuer

make_issuer, issuer = support.make_issuer, support.issuer  # fixtures


def _revoke(issuer: Issuer, token: str, **form: str) -> httpx2.Response:
    return issuer.http.post("/oauth/revoke", data={"token": token, **form})


def _family_revoked(issuer: Issuer, token: str) -> bool:
    claims = issuer.run(issuer.service.verify(token))
    assert claims is not None
    return issuer.run(issuer.service.is_family_revoked(claims.family_id))


def test_revoking_a_refresh_token_ends_the_session(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    assert not _family_revoked(issuer, tokens.access_token)
    response = _revoke(
        issuer, tokens.refresh_token, token_type_hint="refresh_token", client_id="claude-desktop"
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert issuer.refresh(tokens.refresh_token).status_code == 401
    assert _family_revoked(issuer, tokens.id_token)
    assert _family_revoked(issuer, tokens.access_token)


def test_revoking_an_access_token_without_client_auth_ends_the_session(issuer: Issuer) -> None:
    # Claude Code's sign-out: the bearer first, no client authentication at all.
    tokens = issuer.tokens()
    assert _revoke(issuer, tokens.access_token).status_code == 200
    assert issuer.refresh(tokens.refresh_token).status_code == 401
    userinfo = issuer.http.get(
        "/oauth/userinfo", headers={"authorization": f"Bearer {tokens.access_token}"}
    )
    assert userinfo.status_code == 401


def test_revoking_an_id_token_ends_the_session(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    assert _revoke(issuer, tokens.id_token, token_type_hint="access_token").status_code == 200
    assert issuer.refresh(tokens.refresh_token).status_code == 401


def test_revoking_does_not_touch_other_sessions(issuer: Issuer) -> None:
    one, two = issuer.tokens(), issuer.tokens()
    _revoke(issuer, one.refresh_token)
    assert issuer.refresh(two.refresh_token).status_code == 200


@pytest.mark.parametrize("token", ["unknown-token", "a.b.c", "x" * 5000])
def test_unknown_tokens_are_answered_200(issuer: Issuer, token: str) -> None:
    assert _revoke(issuer, token).status_code == 200


def test_revoking_twice_is_fine(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    assert _revoke(issuer, tokens.refresh_token).status_code == 200
    assert _revoke(issuer, tokens.refresh_token).status_code == 200
    assert _revoke(issuer, tokens.access_token).status_code == 200


def test_a_missing_token_is_an_invalid_request(issuer: Issuer) -> None:
    response = issuer.http.post("/oauth/revoke", data={"token_type_hint": "refresh_token"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_client_cannot_revoke_another_clients_tokens(issuer: Issuer) -> None:
    tokens = issuer.tokens()
    secret = base64.b64encode(f"{WEB_APP}:{issuer.web_secret}".encode()).decode()
    response = issuer.http.post(
        "/oauth/revoke",
        data={"token": tokens.refresh_token},
        headers={"authorization": f"Basic {secret}"},
    )
    assert response.status_code == 400
    assert issuer.refresh(tokens.refresh_token).status_code == 200


def test_a_confidential_client_with_a_wrong_secret_is_refused(issuer: Issuer) -> None:
    response = issuer.http.post(
        "/oauth/revoke",
        data={"token": "whatever", "client_id": WEB_APP, "client_secret": "gpcs-wrong"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_revoking_bumps_the_change_epoch_so_proxies_drop_cached_sessions(issuer: Issuer) -> None:
    from gatepass.store.identity_queries import read_change_epoch

    tokens = issuer.tokens()
    before = issuer.store(read_change_epoch)
    _revoke(issuer, tokens.refresh_token)
    assert issuer.store(read_change_epoch) == before + 1


def test_purge_forgets_dead_rows_and_keeps_live_ones(issuer: Issuer) -> None:
    from datetime import timedelta

    from sqlalchemy import update
    from sqlmodel import func, select
    from sqlmodel.ext.asyncio.session import AsyncSession

    from gatepass.store.oauth import AuthorizationCode, RefreshToken, RevokedFamily
    from gatepass.store.types import utcnow

    dead, live = issuer.tokens(), issuer.tokens()
    _revoke(issuer, dead.refresh_token)
    dead_family = issuer.run(issuer.service.verify(dead.id_token))
    assert dead_family is not None
    long_ago = utcnow() - timedelta(days=2)

    async def age(session: AsyncSession) -> None:
        family = dead_family.family_id
        await session.exec(
            update(RefreshToken)
            .where(RefreshToken.family_id == family)
            .values(family_expires_at=long_ago)
        )
        await session.exec(
            update(RevokedFamily)
            .where(RevokedFamily.family_id == family)
            .values(expires_at=long_ago)
        )
        await session.exec(
            update(AuthorizationCode)
            .where(AuthorizationCode.family_id == family)
            .values(expires_at=long_ago)
        )

    issuer.store(age)
    issuer.run(issuer.service.purge())

    async def counts(session: AsyncSession) -> tuple[int, int, int]:
        tokens = (await session.exec(select(func.count()).select_from(RefreshToken))).one()
        codes = (await session.exec(select(func.count()).select_from(AuthorizationCode))).one()
        families = (await session.exec(select(func.count()).select_from(RevokedFamily))).one()
        return tokens, codes, families

    assert issuer.store(counts) == (1, 1, 0)
    assert issuer.refresh(live.refresh_token).status_code == 200
