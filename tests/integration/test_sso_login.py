"""Signing in at idp-dev through Gatepass's relying party: the paths that let people in."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from idp_dev import IdpConfig, IdpHandle, User, run_idp

from gatepass.store.identity import User as GatepassUser
from tests.integration.test_sso_support import ALICE, BOB, SiteFactory, site_factory


@pytest.fixture
def make_site(tmp_path: Path, migrated_template: Path, idp: IdpHandle) -> Iterator[SiteFactory]:
    with site_factory(tmp_path, migrated_template, idp) as factory:
        yield factory


def test_begin_redirects_to_the_idp_with_pkce_state_nonce_and_a_browser_binding_cookie(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    with site.browser() as http:
        response = site.begin(http, hint="alice@corp.example")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == site.idp.issuer
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["response_type"] == "code"
    assert params["client_id"] == "gatepass"
    assert params["redirect_uri"] == f"{site.url}/sso/callback/corp"
    assert params["scope"] == "openid profile email groups offline_access"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43
    assert len(params["nonce"]) >= 43
    assert params["login_hint"] == "alice@corp.example"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("gatepass_sso_")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/sso/" in cookie
    assert "max-age=600" in cookie
    assert "secure" not in cookie  # the site is plain http on loopback


def test_pending_login_keeps_only_hashes_and_the_encrypted_verifier(
    make_site: SiteFactory,
) -> None:
    from sqlmodel import select

    from gatepass.store.oauth import PendingLogin

    site = make_site()
    with site.browser() as http:
        response = site.begin(http)
        state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]
        (cookie,) = [v for k, v in http.cookies.items() if k.startswith("gatepass_sso_")]

    async def read(session):  # type: ignore[no-untyped-def]
        return (await session.exec(select(PendingLogin))).one()

    pending = site.store(read)
    assert pending.state_hash == site.gateway.keyring.hash_credential(state)
    assert pending.browser_hash == site.gateway.keyring.hash_credential(cookie)
    assert state not in str(pending.model_dump())
    assert cookie not in str(pending.model_dump())
    assert pending.code_verifier_encrypted is not None
    assert pending.purpose == "admin"
    assert pending.request["payload"] == {"next": "/"}


def test_alice_signs_in_and_gets_the_engineering_key(make_site: SiteFactory) -> None:
    site = make_site()
    response = site.sign_in(ALICE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == "alice@corp.example"
    assert body["key_id"] == site.key_id("eng-key")
    assert body["role"] == "user"
    assert body["idp"] == "corp"
    assert set(body["groups"]) == {"engineering", "admins"}
    assert body["payload"] == {"next": "/"}
    assert len(site.completed) == 1
    # the browser-binding cookie is deleted once used
    deleted = response.headers["set-cookie"].lower()
    assert deleted.startswith("gatepass_sso_")
    assert "max-age=0" in deleted


def test_bob_signs_in_and_gets_the_sales_key(make_site: SiteFactory) -> None:
    site = make_site()
    response = site.sign_in(BOB)
    assert response.status_code == 200, response.text
    assert response.json()["key_id"] == site.key_id("sales-key")
    assert response.json()["groups"] == ["sales"]


def test_the_user_is_persisted_keyed_on_issuer_and_subject_with_the_refresh_token_encrypted(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    first = site.sign_in(ALICE).json()
    user = site.user("alice@corp.example")
    assert user.issuer == site.idp.issuer
    assert user.subject == "alice"
    assert user.public_id == first["public_id"]
    assert user.name == "Alice Example"
    assert user.groups_complete is True
    assert user.last_login_at is not None
    assert user.upstream_refresh_token_encrypted is not None
    assert site.gateway.keyring.decrypt(user.upstream_refresh_token_encrypted)

    # A new email at the IdP for the same subject is the same person, not a new one.
    site.idp.update_user("alice", email="alice.new@corp.example")
    second = site.sign_in(("alice.new@corp.example", "alice-password")).json()
    assert second["user_id"] == first["user_id"]
    assert second["public_id"] == first["public_id"]
    assert site.user("alice.new@corp.example").subject == "alice"


def test_a_successful_sign_in_is_audited_without_secrets(make_site: SiteFactory) -> None:
    site = make_site()
    site.sign_in(ALICE)
    (event,) = site.audit("login.success")
    assert event.actor == "alice@corp.example"
    assert event.target == "corp"
    assert event.outcome == "ok"
    assert event.ip == "127.0.0.1"
    assert event.detail["key_id"] == site.key_id("eng-key")
    assert event.detail["purpose"] == "admin"
    text = str(event.model_dump())
    assert "refresh" not in text
    assert "secret" not in text


def test_several_groups_with_different_keys_the_lowest_priority_wins(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    site.add_mapping(idp="corp", group="admins", key="vip-key", priority=5, role="admin")
    body = site.sign_in(ALICE).json()
    assert body["key_id"] == site.key_id("vip-key")
    assert body["role"] == "admin"


def test_an_email_mapping_beats_a_group_mapping_at_equal_priority(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    site.add_mapping(idp="corp", email="Alice@Corp.Example", key="vip-key", priority=10)
    assert site.sign_in(ALICE).json()["key_id"] == site.key_id("vip-key")


def test_email_case_from_the_idp_does_not_matter(make_site: SiteFactory) -> None:
    site = make_site()
    site.idp.add_user(User(email="Carol@CORP.Example", password="pw", groups=("sales",)))
    body = site.sign_in(("carol@corp.example", "pw")).json()
    assert body["email"] == "carol@corp.example"


def test_groups_can_come_from_a_nested_claim_path(make_site: SiteFactory) -> None:
    site = make_site()
    site.idp.add_user(
        User(
            email="dan@corp.example",
            password="pw",
            claims={"realm_access": {"roles": ["sales"]}},
        )
    )

    async def set_path(session):  # type: ignore[no-untyped-def]
        from gatepass.store import identity_queries

        idp = await identity_queries.get_idp(session, name="corp")
        assert idp is not None
        idp.groups_claim = "realm_access.roles"
        session.add(idp)

    site.store(set_path)
    body = site.sign_in(("dan@corp.example", "pw")).json()
    assert body["groups"] == ["sales"]
    assert body["key_id"] == site.key_id("sales-key")


# Several IdPs: the chooser and login_hint routing.


@pytest.fixture
def other_idp() -> Iterator[IdpHandle]:
    config = IdpConfig.demo(redirect_uris=["http://127.0.0.1/sso/callback/other"])
    with run_idp(config) as handle:
        handle.add_user(
            User(email="carol@other.example", password="carol-password", groups=("sales",))
        )
        yield handle


def test_login_hint_domain_picks_the_idp_that_allows_it(
    make_site: SiteFactory, other_idp: IdpHandle
) -> None:
    site = make_site()
    site.add_idp("other", other_idp.issuer, ["other.example"])
    site.add_mapping(idp="other", group="sales", key="sales-key")
    with site.browser() as http:
        to_other = site.begin(http, hint="carol@OTHER.example")
        to_corp = site.begin(http, hint="alice@corp.example")
    assert to_other.headers["location"].startswith(other_idp.issuer + "/authorize?")
    assert to_corp.headers["location"].startswith(site.idp.issuer + "/authorize?")

    with site.browser() as http:
        callback = site.to_callback(
            http, ("carol@other.example", "carol-password"), hint="carol@other.example"
        )
        assert urlsplit(callback).path == "/sso/callback/other"
        body = http.get(callback).json()
    assert body["idp"] == "other"
    assert body["key_id"] == site.key_id("sales-key")


def choices(page: str) -> dict[str, str]:
    """The chooser's links, by IdP name."""
    found = re.findall(r'<a class="button" id="idp-([^"]+)" href="([^"]+)"', page)
    return {name: html.unescape(href) for name, href in found}


def test_without_a_usable_hint_several_idps_get_a_chooser_that_continues_the_sign_in(
    make_site: SiteFactory, other_idp: IdpHandle
) -> None:
    site = make_site()
    site.add_idp("other", other_idp.issuer, ["other.example"])
    for hint in (None, "someone@elsewhere.example", "not-an-email"):
        with site.browser() as http:
            page = site.begin(http, hint=hint)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["x-frame-options"] == "DENY"
            assert set(choices(page.text)) == {"corp", "other"}
            assert any(name.startswith("gatepass_sso_") for name in http.cookies)

    with site.browser() as http:
        links = choices(site.begin(http).text)
        assert urlsplit(links["corp"]).path == "/sso/choose"
        chosen = http.get(site.url + links["corp"])
        assert chosen.status_code == 302
        assert chosen.headers["location"].startswith(site.idp.issuer + "/authorize?")
        callback = idp_sign_in(http, chosen.headers["location"], ALICE)
        body = http.get(callback).json()
    assert body["idp"] == "corp"
    assert body["key_id"] == site.key_id("eng-key")


def test_the_chooser_link_can_be_followed_again_to_pick_another_idp(
    make_site: SiteFactory, other_idp: IdpHandle
) -> None:
    site = make_site()
    site.add_idp("other", other_idp.issuer, ["other.example"])
    site.add_mapping(idp="other", group="sales", key="sales-key")
    with site.browser() as http:
        links = choices(site.begin(http).text)
        first = http.get(site.url + links["corp"]).headers["location"]
        second = http.get(site.url + links["other"]).headers["location"]  # changed their mind
        assert second.startswith(other_idp.issuer)
        stale = idp_sign_in(http, first, ALICE)
        refused_response = http.get(stale)
        assert refused_response.status_code == 400  # the sign-in now belongs to "other"
    assert site.completed == []


def test_the_chooser_refuses_another_browser_and_unknown_idps(
    make_site: SiteFactory, other_idp: IdpHandle
) -> None:
    site = make_site()
    site.add_idp("other", other_idp.issuer, ["other.example"])
    with site.browser() as http:
        links = choices(site.begin(http).text)
        unknown = http.get(site.url + links["corp"].replace("idp=corp", "idp=nope"))
        assert unknown.status_code == 400
    with site.browser() as stranger:
        stolen = stranger.get(site.url + links["corp"])
    assert stolen.status_code == 400
    reasons = [e.detail["reason"] for e in site.audit("login.failure")]
    assert reasons == ["choice_invalid", "browser_mismatch"]


def test_login_hint_matching_several_idps_offers_only_those(
    make_site: SiteFactory, other_idp: IdpHandle
) -> None:
    site = make_site()
    site.add_idp("other", other_idp.issuer, ["other.example", "corp.example"])
    site.add_idp("third", other_idp.issuer, ["third.example"])
    with site.browser() as http:
        page = site.begin(http, hint="alice@corp.example")
    assert page.status_code == 200
    assert 'id="idp-corp"' in page.text
    assert 'id="idp-other"' in page.text
    assert 'id="idp-third"' not in page.text


def test_a_second_sign_in_started_in_the_same_browser_does_not_break_the_first(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    with site.browser() as http:
        first = site.begin(http).headers["location"]
        site.begin(http)  # another tab
        callback = idp_sign_in(http, first, ALICE)
        assert http.get(callback).status_code == 200
    assert len(site.completed) == 1


def idp_sign_in(http, url: str, who: tuple[str, str]) -> str:  # type: ignore[no-untyped-def]
    from idp_dev.testing import sign_in

    return sign_in(http, url, login=who[0], password=who[1])


def test_the_purpose_and_payload_reach_that_purposes_completion_unchanged(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    payload = {"client_id": "claude-desktop", "state": "s-1", "scope": ["openid"], "n": 3}
    with site.browser() as http:
        started = site.begin(http, purpose="authorize", payload=payload)
        callback = idp_sign_in(http, started.headers["location"], ALICE)
        body = http.get(callback).json()
    assert body["purpose"] == "authorize"
    assert body["payload"] == payload
    assert [c.purpose for c in site.completed] == ["authorize"]


def test_the_binding_cookie_is_secure_when_the_public_url_is_https(
    make_site: SiteFactory,
) -> None:
    site = make_site(public_url="https://gatepass.example")
    with site.browser() as http:
        response = site.begin(http)
    assert response.status_code == 302
    assert "secure" in response.headers["set-cookie"].lower()
    assert (
        "redirect_uri=https%3A%2F%2Fgatepass.example%2Fsso%2Fcallback%2Fcorp"
        in (response.headers["location"])
    )


def test_the_app_mounts_the_callback_route(signin) -> None:  # type: ignore[no-untyped-def]
    import httpx2

    response = httpx2.get(f"{signin.gatepass.url}/sso/callback/corp")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


def test_the_user_row_is_unique_per_issuer_and_subject(make_site: SiteFactory) -> None:
    site = make_site()
    site.sign_in(ALICE)
    site.sign_in(ALICE)

    async def count(session):  # type: ignore[no-untyped-def]
        from sqlmodel import select

        return len((await session.exec(select(GatepassUser))).all())

    assert site.store(count) == 1
