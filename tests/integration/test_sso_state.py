"""State, browser binding and IdP checks on the callback: all refused before the code is
redeemed (the code stays spendable at the IdP), each with a clear page and an audit event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from idp_dev import IdpConfig, IdpHandle, run_idp
from idp_dev.testing import RelyingParty, callback_params
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.oauth import PendingLogin
from gatepass.store.types import utcnow
from tests.integration.test_sso_support import Site, SiteFactory, refused, site_factory


@pytest.fixture
def make_site(tmp_path: Path, migrated_template: Path, idp: IdpHandle) -> Iterator[SiteFactory]:
    with site_factory(tmp_path, migrated_template, idp) as factory:
        yield factory


def code_is_unspent(site: Site, callback: str) -> bool:
    """Redeem the code ourselves with the pending login's verifier: works only if unspent."""
    params = callback_params(callback)

    async def verifier(session: AsyncSession) -> str:
        state_hash = site.gateway.keyring.hash_credential(params["state"])
        pending = (
            await session.exec(select(PendingLogin).where(PendingLogin.state_hash == state_hash))
        ).one()
        assert pending.code_verifier_encrypted is not None
        return site.gateway.keyring.decrypt(pending.code_verifier_encrypted)

    with httpx2.Client() as http:
        rp = RelyingParty(
            http, site.idp.issuer, redirect_uri=f"{site.url}{urlsplit(callback).path}"
        )
        return rp.redeem(params["code"], site.store(verifier)).status_code == 200


def with_params(callback: str, **changes: str | None) -> str:
    parts = urlsplit(callback)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}"


def test_a_callback_without_state_is_refused(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        callback = site.to_callback(http)
        response = http.get(with_params(callback, state=None))
    refused(site, response, "state_missing")
    assert code_is_unspent(site, callback)


def test_a_callback_with_a_state_we_never_issued_is_refused(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        callback = site.to_callback(http)
        response = http.get(with_params(callback, state="forged-state"))
    refused(site, response, "state_unknown")
    assert code_is_unspent(site, callback)


def test_a_replayed_callback_is_refused_and_completes_only_once(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        callback = site.to_callback(http)
        assert http.get(callback).status_code == 200
        cookies = dict(http.cookies)
    assert len(site.completed) == 1
    site.completed.clear()
    with site.browser() as http:
        http.cookies.update(cookies)
        response = http.get(callback)
    refused(site, response, "state_replayed")


def test_an_expired_sign_in_is_refused_before_the_code_is_redeemed(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    with site.browser() as http:
        callback = site.to_callback(http)

        async def expire(session: AsyncSession) -> None:
            pending = (await session.exec(select(PendingLogin))).one()
            pending.expires_at = utcnow() - timedelta(seconds=1)
            session.add(pending)

        site.store(expire)
        response = http.get(callback)
    refused(site, response, "state_expired")
    assert code_is_unspent(site, callback)


def test_a_callback_in_another_browser_is_refused_before_the_code_is_redeemed(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    with site.browser() as victim:
        callback = site.to_callback(victim)
    with site.browser() as attacker:
        site.begin(attacker)  # holds a binding cookie of its own, for another sign-in
        response = attacker.get(callback)
    refused(site, response, "browser_mismatch")
    assert code_is_unspent(site, callback)


def test_a_callback_with_a_tampered_binding_cookie_is_refused(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        callback = site.to_callback(http)
        name = next(n for n in http.cookies if n.startswith("gatepass_sso_"))
        http.cookies.set(name, "x" * 43, domain="127.0.0.1", path="/sso/")
        cookie_header = f"{name}={'x' * 43}"
        response = httpx2.get(callback, headers={"cookie": cookie_header})
    refused(site, response, "browser_mismatch")


def test_a_callback_at_another_idps_endpoint_is_refused(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        callback = site.to_callback(http)
        wrong = callback.replace("/sso/callback/corp", "/sso/callback/nope")
        response = http.get(wrong)
    refused(site, response, "idp_mismatch")
    assert code_is_unspent(site, callback)


@pytest.fixture
def other_idp() -> Iterator[IdpHandle]:
    config = IdpConfig.demo(redirect_uris=["http://127.0.0.1/sso/callback/other"])
    with run_idp(config) as handle:
        yield handle


def test_mix_up_a_sign_in_sent_to_one_idp_cannot_finish_at_another(
    make_site: SiteFactory, other_idp: IdpHandle
) -> None:
    site = make_site()
    site.add_idp("other", other_idp.issuer, ["other.example"])
    with site.browser() as http:
        callback = site.to_callback(http, hint="alice@corp.example")
        response = http.get(callback.replace("/sso/callback/corp", "/sso/callback/other"))
    refused(site, response, "idp_mismatch")


def test_mix_up_an_iss_naming_another_idp_is_refused(
    make_site: SiteFactory, other_idp: IdpHandle
) -> None:
    site = make_site()
    site.add_idp("other", other_idp.issuer, ["other.example"])
    with site.browser() as http:
        callback = site.to_callback(http, hint="alice@corp.example")
        response = http.get(with_params(callback, iss=other_idp.issuer))
    refused(site, response, "iss_mismatch")


def test_a_refused_callback_spends_the_state(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        callback = site.to_callback(http)
        first = http.get(with_params(callback, iss="https://evil.example"))
        refused(site, first, "iss_mismatch")
        second = http.get(callback)
    refused(site, second, "state_replayed")


def test_the_chooser_cannot_reopen_a_spent_sign_in(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        callback = site.to_callback(http)
        assert http.get(callback).status_code == 200
    site.completed.clear()
    state = callback_params(callback)["state"]
    with site.browser() as http:
        response = http.get(f"{site.url}/sso/choose", params={"login": state, "idp": "corp"})
    assert response.status_code == 400
    assert site.completed == []


def test_an_unregistered_purpose_is_a_clear_page_not_a_crash(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        response = site.begin(http, purpose="device")
    refused(site, response, "purpose_unavailable", status=500)


def test_with_no_idp_configured_begin_says_so(make_site: SiteFactory) -> None:
    site = make_site()

    async def remove(session: AsyncSession) -> None:
        from gatepass.manage import identity as identity_ops

        await identity_ops.remove_idp(session, name="corp")

    site.store(remove)
    with site.browser() as http:
        response = site.begin(http)
    refused(site, response, "no_idp", status=503)


def test_sign_ins_long_expired_are_forgotten_when_new_ones_begin(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        site.begin(http)

    async def age(session: AsyncSession) -> None:
        pending = (await session.exec(select(PendingLogin))).one()
        pending.expires_at = utcnow() - timedelta(days=2)
        session.add(pending)

    site.store(age)
    with site.browser() as http:
        site.begin(http)

    async def count(session: AsyncSession) -> int:
        return len((await session.exec(select(PendingLogin))).all())

    assert site.store(count) == 1
