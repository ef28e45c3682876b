"""The verification page: code entry and normalisation, CSRF guards, rate limits, framing."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest
from idp_dev.testing import parse_form

from tests.conftest import SignIn
from tests.integration import test_device_support as support
from tests.integration.test_device_support import Devices, hrefs

devices = support.devices  # fixture

EVIL = "https://evil.example"


@pytest.mark.parametrize(
    "typed",
    [
        lambda code: code.lower(),
        lambda code: code.replace("-", ""),
        lambda code: " " + code.replace("-", " ").lower() + " ",
        lambda code: code.replace("-", "\u2013"),
    ],
    ids=["lowercase", "no-dash", "spaces", "en-dash"],
)
def test_user_codes_are_accepted_in_any_case_with_or_without_dash(
    devices: Devices, typed: Callable[[str], str]
) -> None:
    grant = devices.client().authorize()
    page = devices.browser().enter_code(typed(grant["user_code"]))
    assert page.status_code == 200, page.text[:1000]
    assert grant["user_code"] in page.text
    assert "/device/sign-in?" in hrefs(page.text, "sign-in")


def test_a_prefilled_code_is_normalised_and_never_submitted_for_the_user(
    devices: Devices,
) -> None:
    grant = devices.client().authorize()
    browser = devices.browser()
    page = browser.open("/device?user_code=" + grant["user_code"].replace("-", "").lower())
    assert page.status_code == 200
    assert f'value="{grant["user_code"]}"' in page.text
    assert "<script" not in page.text  # RFC 8628 §5.4: the user must press Continue
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/device" in cookie


def test_unknown_and_malformed_codes_get_a_clear_page(devices: Devices) -> None:
    browser = devices.browser()
    for code in ("BCDF-GHJK", "AEIO-U123", ""):
        page = browser.enter_code(code)
        assert page.status_code == 400
        assert "not valid" in page.text


def test_a_used_code_cannot_be_entered_again(devices: Devices) -> None:
    client = devices.client()
    grant = client.authorize()
    devices.browser().approve_code(grant["user_code"])
    again = devices.browser().enter_code(grant["user_code"])
    assert again.status_code == 400
    assert "already used" in again.text


def test_a_cross_origin_code_submission_is_refused(devices: Devices) -> None:
    grant = devices.client().authorize()
    browser = devices.browser()
    form = parse_form(browser.open("/device").text)
    data = {**form.hidden, "user_code": grant["user_code"]}
    for headers in ({"origin": EVIL}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}):
        sent = {"origin": "", "sec-fetch-site": "", **headers}
        sent = {k: v for k, v in sent.items() if v}
        response = browser.http.post(browser.origin + "/device", data=data, headers=sent)
        assert response.status_code == 403, headers


def test_code_submission_without_the_browser_token_is_refused(devices: Devices) -> None:
    grant = devices.client().authorize()
    browser = devices.browser()
    browser.open("/device")  # has the cookie, but sends no or a wrong token
    missing = browser.post("/device", {"user_code": grant["user_code"]})
    assert missing.status_code == 403
    wrong = browser.post("/device", {"user_code": grant["user_code"], "csrf": "0" * 64})
    assert wrong.status_code == 403
    # a token copied from someone else's page is useless without their cookie
    other = parse_form(devices.browser().open("/device").text).hidden
    stolen = browser.post("/device", {**other, "user_code": grant["user_code"]})
    assert stolen.status_code == 403


def test_the_sign_in_link_works_only_in_the_browser_that_entered_the_code(
    devices: Devices,
) -> None:
    grant = devices.client().authorize()
    page = devices.browser().enter_code(grant["user_code"])
    link = hrefs(page.text, "sign-in")
    elsewhere = devices.browser().open(link)
    assert elsewhere.status_code == 400  # not a redirect to the IdP


def test_approval_is_refused_cross_origin_without_token_or_from_another_browser(
    signin: SignIn, devices: Devices
) -> None:
    client = devices.client()
    grant = client.authorize()
    browser = devices.browser()
    confirm = browser.sign_in(
        browser.enter_code(grant["user_code"]),
        login="alice@corp.example",
        password="alice-password",
    )
    assert confirm.status_code == 200
    form = parse_form(confirm.text).hidden

    cross = browser.decide(confirm, "approve", origin=EVIL)
    assert cross.status_code == 403
    no_token = browser.post(
        "/device/confirm", {"user_code": form["user_code"], "decision": "approve"}
    )
    assert no_token.status_code == 403
    wrong = browser.post("/device/confirm", {**form, "csrf": "f" * 64, "decision": "approve"})
    assert wrong.status_code == 403
    other = devices.browser()
    other.open("/device")
    replayed = other.post("/device/confirm", {**form, "decision": "approve"})
    assert replayed.status_code == 403
    assert client.poll(grant["device_code"]).json()["error"] == "authorization_pending"

    # the browser that signed in can still approve
    assert browser.decide(confirm, "approve").status_code == 200
    support.allow_next_poll(signin, grant["user_code"])
    assert client.poll(grant["device_code"]).status_code == 200


def test_a_second_decision_is_refused(devices: Devices) -> None:
    grant = devices.client().authorize()
    browser = devices.browser()
    confirm = browser.sign_in(
        browser.enter_code(grant["user_code"]),
        login="alice@corp.example",
        password="alice-password",
    )
    form = parse_form(confirm.text).hidden
    assert browser.decide(confirm, "deny").status_code == 200
    # the cookie is gone and the request decided: approving now changes nothing
    again = browser.post("/device/confirm", {**form, "decision": "approve"})
    assert again.status_code in (400, 403)


def test_wrong_codes_are_rate_limited_per_address_with_a_429_page(devices: Devices) -> None:
    grant = devices.client().authorize()
    browser = devices.browser()
    form = browser.open("/device")
    for _ in range(10):
        assert browser.enter_code("BCDF-BCDF", form).status_code == 400
    limited = browser.enter_code(grant["user_code"], form)  # even the right one, now
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many attempts" in limited.text


def test_device_authorization_is_rate_limited_per_address_with_slow_down(
    signin: SignIn,
) -> None:
    endpoint = signin.issuer + "/oauth/device_authorization"
    with httpx2.Client() as http:
        for _ in range(30):
            assert http.post(endpoint, data={"surface": "claude_code"}).status_code == 200
        limited = http.post(endpoint, data={"surface": "claude_code"})
    assert limited.status_code == 429
    assert limited.json()["error"] == "slow_down"
    assert int(limited.headers["retry-after"]) > 0
    assert limited.headers["cache-control"] == "no-store"
