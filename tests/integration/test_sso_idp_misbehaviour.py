"""Every idp-dev misbehaviour that a relying party must catch: a clear page, an audit event,
and no completion. Each switch bends exactly one thing; everything else stays honest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from idp_dev import IdpHandle

from tests.integration.test_sso_support import ALICE, SiteFactory, refused, site_factory


@pytest.fixture
def make_site(tmp_path: Path, migrated_template: Path, idp: IdpHandle) -> Iterator[SiteFactory]:
    with site_factory(tmp_path, migrated_template, idp) as factory:
        yield factory


ID_TOKEN_DEFECTS: list[tuple[dict[str, Any], str]] = [
    ({"wrong_iss": True}, "id_token_issuer"),
    ({"wrong_aud": True}, "id_token_audience"),
    ({"extra_aud": True}, "id_token_audience"),  # an audience we do not trust rides along
    ({"azp_mismatch": True}, "id_token_azp"),
    ({"expired": True}, "id_token_expired"),
    ({"future_iat": True}, "id_token_iat"),
    ({"bad_signature": True}, "id_token_signature"),
    ({"alg_none": True}, "id_token_algorithm"),
    ({"hs256_public_key": True}, "id_token_algorithm"),
    ({"unknown_kid": True}, "id_token_unknown_kid"),
    ({"no_kid": True}, "id_token_no_kid"),
    ({"missing_nonce": True}, "id_token_nonce"),
    ({"wrong_nonce": True}, "id_token_nonce"),
    ({"missing_sub": True}, "id_token_subject"),
    ({"missing_groups": True, "userinfo_sub_mismatch": True}, "userinfo_subject"),
    ({"missing_auth_response_iss": True}, "iss_missing"),
    ({"wrong_auth_response_iss": True}, "iss_mismatch"),
]


@pytest.mark.parametrize(
    ("switches", "reason"), ID_TOKEN_DEFECTS, ids=[r for _, r in ID_TOKEN_DEFECTS]
)
def test_a_defective_idp_answer_is_refused_with_a_clear_page(
    make_site: SiteFactory, switches: dict[str, Any], reason: str
) -> None:
    site = make_site()
    site.idp.set(**switches)
    response = site.sign_in(ALICE)
    event = refused(site, response, reason)
    assert event.target == "corp"
    assert event.detail["purpose"] == "admin"
    assert site.audit("login.success") == []


def test_unverified_email_is_refused_when_the_connection_requires_verification(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    site.idp.set(unverified_email=True)
    response = site.sign_in(ALICE)
    refused(site, response, "email_unverified", status=403)
    assert "not verified" in response.text


def test_unverified_email_is_accepted_when_the_connection_does_not_require_it(
    make_site: SiteFactory,
) -> None:
    site = make_site()

    async def relax(session):  # type: ignore[no-untyped-def]
        from gatepass.store import identity_queries

        idp = await identity_queries.get_idp(session, name="corp")
        assert idp is not None
        idp.require_verified_email = False
        session.add(idp)

    site.store(relax)
    site.idp.set(unverified_email=True)
    assert site.sign_in(ALICE).status_code == 200


def test_discovery_naming_another_issuer_is_refused_before_the_browser_leaves(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    site.idp.set(discovery_issuer_mismatch=True)
    with site.browser() as http:
        response = site.begin(http)
    refused(site, response, "discovery_issuer_mismatch")
    assert "location" not in response.headers


def test_an_idp_error_response_names_the_error(make_site: SiteFactory) -> None:
    site = make_site()
    site.idp.set(callback_error="access_denied")
    response = site.sign_in(ALICE)
    event = refused(site, response, "idp_error")
    assert "access_denied" in response.text
    assert event.detail["detail"].startswith("access_denied")


def test_an_idp_error_with_a_hostile_code_is_not_echoed(make_site: SiteFactory) -> None:
    site = make_site()
    with site.browser() as http:
        started = site.begin(http)
        from urllib.parse import parse_qs, urlsplit

        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        response = http.get(
            f"{site.url}/sso/callback/corp",
            params={"state": state, "iss": site.idp.issuer, "error": "<script>x</script>"},
        )
    refused(site, response, "idp_error")
    assert "<script>x" not in response.text
    assert "(invalid)" in response.text


def test_token_endpoint_server_errors_give_a_502_page(make_site: SiteFactory) -> None:
    site = make_site()
    site.idp.set(token_failure_status=503)
    response = site.sign_in(ALICE)
    refused(site, response, "token_failed", status=502)
    assert "did not answer" in response.text


def test_token_endpoint_client_errors_give_a_clear_page(make_site: SiteFactory) -> None:
    site = make_site()
    site.idp.set(token_failure_status=401)  # with a JSON error that is not a server fault
    response = site.sign_in(ALICE)
    assert response.status_code in (400, 502)
    assert site.completed == []


def test_a_token_endpoint_slower_than_the_timeout_gives_a_502_page(
    make_site: SiteFactory,
) -> None:
    site = make_site(timeout=0.3)
    site.idp.set(token_delay=2)
    response = site.sign_in(ALICE)
    refused(site, response, "token_unreachable", status=502)


def test_an_unreachable_idp_gives_a_502_page_at_begin(
    make_site: SiteFactory,
) -> None:
    from gatepass.devtools.server import bind_loopback, socket_url

    site = make_site()
    sock = bind_loopback()
    dead = socket_url(sock)
    sock.close()  # nothing listens there any more
    site.add_idp("corp", dead, ["corp.example"])
    with site.browser() as http:
        response = site.begin(http)
    refused(site, response, "discovery_unreachable", status=502)


def test_unknown_kid_refetches_the_jwks_once_and_then_is_rate_limited(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    site.idp.set(unknown_kid=True)
    refused(site, site.sign_in(ALICE), "id_token_unknown_kid")
    assert site.transport.count("/jwks") == 2  # the first fetch, then one refetch
    site.completed.clear()
    refused(site, site.sign_in(ALICE), "id_token_unknown_kid")
    assert site.transport.count("/jwks") == 2  # within the interval: no new fetch


def test_rotated_idp_keys_are_accepted_after_one_refetch(make_site: SiteFactory) -> None:
    site = make_site()
    assert site.sign_in(ALICE).status_code == 200
    assert site.transport.count("/jwks") == 1
    site.idp.rotate_keys()
    assert site.sign_in(ALICE).status_code == 200
    assert site.transport.count("/jwks") == 2
    assert site.sign_in(ALICE).status_code == 200
    assert site.transport.count("/jwks") == 2  # cached again


def test_discovery_and_keys_are_cached_between_sign_ins(make_site: SiteFactory) -> None:
    site = make_site()
    for _ in range(3):
        assert site.sign_in(ALICE).status_code == 200
    assert site.transport.count("/.well-known/openid-configuration") == 1
    assert site.transport.count("/jwks") == 1


def test_userinfo_fills_in_missing_groups_and_must_name_the_same_subject(
    make_site: SiteFactory,
) -> None:
    site = make_site()
    site.idp.set(missing_groups=True)
    response = site.sign_in(ALICE)
    # idp-dev withholds groups from userinfo as well: signed in, but nothing maps
    refused(site, response, "no_mapping", status=403)
    assert site.transport.count("/userinfo") == 1
