"""Who gets in after signing in: domains, truncated group lists, mappings, disabled people
and revoked keys. Access is never widened by what the IdP left out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from idp_dev import IdpHandle, User
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass import manage
from gatepass.manage import identity as identity_ops
from gatepass.store import identity_queries
from tests.integration.test_sso_support import ALICE, BOB, SiteFactory, refused, site_factory


@pytest.fixture
def make_site(tmp_path: Path, migrated_template: Path, idp: IdpHandle) -> Iterator[SiteFactory]:
    with site_factory(tmp_path, migrated_template, idp) as factory:
        yield factory


@pytest.mark.parametrize(
    "email",
    [
        "mallory@evil-corp.example",
        "mallory@corp.example.evil.com",
        "mallory@evil.com",
        "mallory@corp.example@evil.com",
        "mallory@corp.exampl",
    ],
)
def test_emails_outside_the_allowed_domain_are_refused(make_site: SiteFactory, email: str) -> None:
    site = make_site()
    site.idp.add_user(User(email=email, password="pw", sub="mallory", groups=("engineering",)))
    response = site.sign_in((email, "pw"))
    if email.count("@") == 1:
        refused(site, response, "email_domain", status=403)
    else:
        refused(site, response, "email_missing")
    assert site.audit("login.success") == []


def test_the_no_access_page_says_who_signed_in_and_whom_to_ask(make_site: SiteFactory) -> None:
    site = make_site()
    site.idp.add_user(User(email="erin@corp.example", password="pw", groups=("ops",)))
    response = site.sign_in(("erin@corp.example", "pw"))
    event = refused(site, response, "no_mapping", status=403)
    assert "signed in successfully" in response.text
    assert "erin@corp.example" in response.text
    assert "administrator" in response.text
    assert event.actor == "erin@corp.example"
    # the person is known to Gatepass (admins can see who tried), without an upstream token
    user = site.user("erin@corp.example")
    assert user.groups == ["ops"]
    assert user.upstream_refresh_token_encrypted is None


def test_a_person_with_no_groups_is_denied(make_site: SiteFactory) -> None:
    site = make_site()
    site.idp.add_user(User(email="fay@corp.example", password="pw"))
    refused(site, site.sign_in(("fay@corp.example", "pw")), "no_mapping", status=403)


@pytest.mark.parametrize("switch", ["groups_truncated", "groups_overage"])
def test_a_group_list_that_may_be_cut_short_never_grants_through_group_mappings(
    make_site: SiteFactory, switch: str
) -> None:
    site = make_site()
    # a catch-all mapping for a filler group that the partial list does contain
    site.add_mapping(idp="corp", group="filler-001", key="vip-key", priority=1)
    site.idp.set(**{switch: True})
    response = site.sign_in(ALICE)
    refused(site, response, "no_mapping", status=403)
    assert site.user("alice@corp.example").groups_complete is False


@pytest.mark.parametrize("switch", ["groups_truncated", "groups_overage"])
def test_an_email_mapping_still_works_when_the_group_list_is_incomplete(
    make_site: SiteFactory, switch: str
) -> None:
    site = make_site()
    site.add_mapping(idp="corp", email="alice@corp.example", key="vip-key", priority=50)
    site.idp.set(**{switch: True})
    response = site.sign_in(ALICE)
    assert response.status_code == 200, response.text
    assert response.json()["key_id"] == site.key_id("vip-key")


def test_a_disabled_user_is_refused(make_site: SiteFactory) -> None:
    site = make_site()
    assert site.sign_in(ALICE).status_code == 200
    site.completed.clear()

    async def disable(session: AsyncSession) -> None:
        await identity_ops.set_user_disabled(session, email="alice@corp.example", disabled=True)

    site.store(disable)
    response = site.sign_in(ALICE)
    refused(site, response, "user_disabled", status=403)
    assert site.sign_in(BOB).status_code == 200


def test_a_revoked_key_is_refused_and_does_not_fall_through_to_another_mapping(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    site.add_mapping(idp="corp", group="admins", key="vip-key", priority=50)

    async def revoke(session: AsyncSession) -> None:
        await manage.revoke_key(session, name="eng-key")

    site.store(revoke)
    response = site.sign_in(ALICE)
    refused(site, response, "key_revoked", status=403)
    assert "revoked" in response.text


def test_an_expired_key_is_refused(make_site: SiteFactory) -> None:
    site = make_site()

    async def expire(session: AsyncSession) -> None:
        from datetime import timedelta

        from gatepass.store import queries
        from gatepass.store.types import utcnow

        key = await queries.get_key_by_name(session, name="sales-key")
        assert key is not None
        key.expires_at = utcnow() - timedelta(seconds=1)
        session.add(key)

    site.store(expire)
    refused(site, site.sign_in(BOB), "key_expired", status=403)


def test_mappings_of_another_idp_do_not_apply(make_site: SiteFactory) -> None:
    site = make_site()
    site.add_idp("elsewhere", "https://elsewhere.example", ["elsewhere.example"])
    site.add_mapping(idp="elsewhere", group="admins", key="vip-key", priority=1)

    async def idps(session: AsyncSession) -> int:
        return len(await identity_queries.list_idps(session))

    assert site.store(idps) == 2
    response = site.sign_in(ALICE, hint="alice@corp.example")
    assert response.json()["key_id"] == site.key_id("eng-key")
