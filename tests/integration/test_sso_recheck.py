"""`recheck`, as the issuer calls it on every refresh: local state first, then the IdP
through the stored (rotated) refresh token, with a bounded grace period for IdP outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from idp_dev import IdpHandle
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass import manage
from gatepass.identity import Recheck
from gatepass.manage import identity as identity_ops
from gatepass.sso.recheck import Rechecker
from gatepass.store import identity_queries
from gatepass.store.types import utcnow
from tests.integration.test_sso_support import ALICE, Site, SiteFactory, site_factory


@pytest.fixture
def make_site(tmp_path: Path, migrated_template: Path, idp: IdpHandle) -> Iterator[SiteFactory]:
    with site_factory(tmp_path, migrated_template, idp) as factory:
        yield factory


def signed_in_alice(site: Site) -> int:
    response = site.sign_in(ALICE)
    assert response.status_code == 200, response.text
    user_id: int = response.json()["user_id"]
    return user_id


def stored_token(site: Site) -> str | None:
    encrypted = site.user("alice@corp.example").upstream_refresh_token_encrypted
    return None if encrypted is None else site.gateway.keyring.decrypt(encrypted)


def edit_alice(site: Site, **changes: object) -> None:
    async def edit(session: AsyncSession) -> None:
        (user,) = await identity_queries.find_users_by_email(session, email="alice@corp.example")
        for name, value in changes.items():
            setattr(user, name, value)
        session.add(user)

    site.store(edit)


def test_recheck_refreshes_at_the_idp_rotates_the_stored_token_and_keeps_the_key(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    before = stored_token(site)
    result = site.recheck(user_id)
    assert result.status == "ok", result.reason
    assert result.identity is not None
    assert result.identity.key_id == site.key_id("eng-key")
    assert result.identity.user_id == user_id
    assert set(result.identity.groups) == {"engineering", "admins"}
    after = stored_token(site)
    assert after is not None
    assert after != before
    assert site.transport.count("/token") == 2  # the code, then one refresh


def test_recheck_keeps_the_auth_time_it_was_given(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    auth_time = utcnow() - timedelta(hours=3)
    result: Recheck = site.on_server(site.sso.recheck(user_id, auth_time))
    assert result.identity is not None
    assert result.identity.auth_time == auth_time


def test_a_group_removed_at_the_idp_ends_access(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    site.idp.update_user("alice@corp.example", groups=["admins"])
    result = site.recheck(user_id)
    assert result.status == "denied"
    assert result.reason == "no_mapping"
    assert site.user("alice@corp.example").groups == ["admins"]
    (event,) = site.audit("session.denied")
    assert event.detail["reason"] == "no_mapping"


def test_a_group_change_at_the_idp_can_change_the_key(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    site.idp.update_user("alice@corp.example", groups=["sales"])
    result = site.recheck(user_id)
    assert result.status == "ok"
    assert result.identity is not None
    assert result.identity.key_id == site.key_id("sales-key")


def test_a_user_disabled_at_the_idp_is_denied_and_the_upstream_token_forgotten(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    site.idp.disable_user("alice@corp.example")
    result = site.recheck(user_id)
    assert result.status == "denied"
    assert result.reason == "idp_invalid_grant"
    assert stored_token(site) is None
    # the IdP no longer vouches for her: her other sessions end too, not only this one
    again = site.recheck(user_id)
    assert again.status == "denied"
    assert again.reason == "idp_grant_lost"
    # until she signs in again
    site.idp.enable_user("alice@corp.example")
    assert signed_in_alice(site) == user_id
    assert site.recheck(user_id).status == "ok"


def test_an_idp_outage_within_the_grace_period_keeps_the_session(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    before = stored_token(site)
    site.idp.set(token_failure_status=503)
    result = site.recheck(user_id)
    assert result.status == "ok"
    assert stored_token(site) == before  # nothing rotated


def test_an_idp_outage_beyond_the_grace_period_ends_the_session(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    edit_alice(site, last_idp_check_at=utcnow() - timedelta(seconds=3601))
    site.idp.set(token_failure_status=503)
    result = site.recheck(user_id)
    assert result.status == "denied"
    assert result.reason == "idp_unavailable"
    assert stored_token(site) is not None  # the IdP may come back; the grant is not gone


def test_an_idp_timeout_counts_as_an_outage(make_site: SiteFactory) -> None:
    site = make_site(timeout=0.3, sign_in={"idp_recheck_grace": 0})
    user_id = signed_in_alice(site)
    site.idp.set(token_delay=2)
    edit_alice(site, last_idp_check_at=utcnow() - timedelta(seconds=1))
    result = site.recheck(user_id)
    assert result.status == "denied"
    assert result.reason == "idp_unavailable"


def test_a_refreshed_id_token_that_fails_validation_is_denied(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    site.idp.set(wrong_iss=True)
    result = site.recheck(user_id)
    assert result.status == "denied"
    assert result.reason == "id_token_issuer"


def test_a_refreshed_id_token_needs_no_nonce(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    site.idp.set(missing_nonce=True)
    assert site.recheck(user_id).status == "ok"


def test_without_an_upstream_token_local_checks_decide(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    edit_alice(site, upstream_refresh_token_encrypted=None)
    site.idp.set(token_failure_status=503)  # not asked at all
    assert site.recheck(user_id).status == "ok"
    assert site.transport.count("/token") == 1


def test_a_user_disabled_in_gatepass_is_denied(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)

    async def disable(session: AsyncSession) -> None:
        await identity_ops.set_user_disabled(session, email="alice@corp.example", disabled=True)

    site.store(disable)
    result = site.recheck(user_id)
    assert result.status == "denied"
    assert result.reason == "user_disabled"
    assert site.transport.count("/token") == 1  # refused before asking the IdP


def test_a_revoked_key_is_denied(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)

    async def revoke(session: AsyncSession) -> None:
        await manage.revoke_key(session, name="eng-key")

    site.store(revoke)
    result = site.recheck(user_id)
    assert result.status == "denied"
    assert result.reason == "key_revoked"


def test_a_removed_mapping_is_denied(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)

    async def remove(session: AsyncSession) -> None:
        for mapping, _, _ in await identity_queries.list_mappings(session):
            if mapping.group == "engineering":
                assert mapping.id is not None
                await identity_ops.remove_mapping(session, mapping_id=mapping.id)

    site.store(remove)
    assert site.recheck(user_id).reason == "no_mapping"


def test_an_unknown_user_is_denied(make_site: SiteFactory) -> None:
    site = make_site()
    result = site.recheck(9999)
    assert result.status == "denied"
    assert result.reason == "user_unknown"


def test_concurrent_rechecks_for_one_person_do_not_spend_the_same_refresh_token_twice(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    user_id = signed_in_alice(site)

    async def both() -> list[Recheck]:
        now = datetime.now().astimezone()
        return list(
            await asyncio.gather(site.sso.recheck(user_id, now), site.sso.recheck(user_id, now))
        )

    results = site.on_server(both())
    assert [r.status for r in results] == ["ok", "ok"]
    assert site.recheck(user_id).status == "ok"  # the family was not revoked as stolen


def test_replicas_rechecking_one_person_at_once_ask_the_idp_once(make_site: SiteFactory) -> None:
    """Two replicas (two Rechecker objects on one database, no shared lock) refresh the same
    person at the same instant: the row lease lets one ask the IdP; the other uses its answer
    instead of spending the rotated refresh token a second time."""
    site = make_site()
    user_id = signed_in_alice(site)
    other_replica = Rechecker(site.gateway, site.sso.http, site.sso.directory)
    before = site.transport.count("/token")
    site.idp.update_user("alice@corp.example", groups=["sales"])

    async def both() -> list[Recheck]:
        now = datetime.now().astimezone()
        return list(
            await asyncio.gather(
                site.sso.recheck(user_id, now), other_replica.recheck(user_id, now)
            )
        )

    results = site.on_server(both())
    assert [r.status for r in results] == ["ok", "ok"]
    sales = site.key_id("sales-key")
    assert [r.identity.key_id for r in results if r.identity] == [sales, sales]
    assert site.transport.count("/token") - before == 1
    assert site.user("alice@corp.example").recheck_lease_until is None  # given back
    assert site.recheck(user_id).status == "ok"  # the IdP saw no reuse


def test_a_lease_left_by_a_crashed_replica_lapses(make_site: SiteFactory) -> None:
    site = make_site()
    user_id = signed_in_alice(site)
    edit_alice(site, recheck_lease_until=utcnow() + timedelta(seconds=0.5))
    started = time.monotonic()
    result = site.recheck(user_id)
    assert result.status == "ok"
    assert time.monotonic() - started >= 0.4
    assert site.user("alice@corp.example").recheck_lease_until is None
