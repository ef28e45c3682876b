"""Email and group extraction from IdP claims."""

from __future__ import annotations

from typing import Any

import pytest

from gatepass.sso.claims import check_email, extract_groups, split_email
from gatepass.sso.errors import LoginDenied, LoginError
from gatepass.sso.login import pick_idp
from gatepass.store.identity import IdpConnection

DOMAINS = ["corp.example"]


def claims(email: object, verified: object = True) -> dict[str, Any]:
    return {"email": email, "email_verified": verified}


@pytest.mark.parametrize(
    "email",
    [
        "a@corp.example@evil.com",
        "a@evil.com@corp.example",
        "@corp.example",
        "a@",
        "corp.example",
        "a @corp.example",
        "a@corp.example\n",
        "a@corp.\texample",
        "",
        None,
        42,
        ["a@corp.example"],
    ],
)
def test_anything_but_one_plain_address_is_not_an_email(email: object) -> None:
    assert split_email(email) is None
    with pytest.raises(LoginError) as raised:
        check_email(claims(email), allowed_domains=DOMAINS, require_verified=True)
    assert raised.value.reason == "email_missing"


@pytest.mark.parametrize(
    "email",
    [
        "a@evil-corp.example",
        "a@corp.example.evil.com",
        "a@sub.corp.example",
        "a@corp.example.",
        "a@corp.ex\u0430mple",  # a Cyrillic a
        "a@xcorp.example",
    ],
)
def test_domains_must_match_exactly(email: str) -> None:
    with pytest.raises(LoginDenied) as raised:
        check_email(claims(email), allowed_domains=DOMAINS, require_verified=True)
    assert raised.value.reason == "email_domain"


def test_domains_compare_case_insensitively_and_the_email_is_lower_cased() -> None:
    result = check_email(
        claims("Alice@CORP.Example"), allowed_domains=["Corp.Example"], require_verified=True
    )
    assert result == "alice@corp.example"


def test_no_allowed_domains_means_any_domain() -> None:
    assert check_email(claims("a@x.example"), allowed_domains=[], require_verified=True)


@pytest.mark.parametrize("verified", [False, None, "false", 1, "yes"])
def test_unverified_emails_are_refused_when_verification_is_required(verified: object) -> None:
    with pytest.raises(LoginDenied) as raised:
        check_email(
            claims("a@corp.example", verified), allowed_domains=DOMAINS, require_verified=True
        )
    assert raised.value.reason == "email_unverified"
    assert check_email(
        claims("a@corp.example", verified), allowed_domains=DOMAINS, require_verified=False
    )


def test_a_string_true_counts_as_verified() -> None:
    assert check_email(
        claims("a@corp.example", "true"), allowed_domains=DOMAINS, require_verified=True
    )


def test_groups_from_a_top_level_claim() -> None:
    groups = extract_groups({"groups": ["a", "b", "a", ""]}, "groups", max_groups=100)
    assert groups.values == ("a", "b")
    assert groups.complete
    assert groups.present


def test_groups_from_a_dotted_path() -> None:
    found = extract_groups({"realm_access": {"roles": ["x"]}}, "realm_access.roles", max_groups=100)
    assert found.values == ("x",)
    missing = extract_groups({"realm_access": ["x"]}, "realm_access.roles", max_groups=100)
    assert missing.values == ()
    assert not missing.present


@pytest.mark.parametrize("value", ["engineering", [1, 2], ["a", None], {"a": 1}, 7, True])
def test_a_groups_claim_that_is_not_a_list_of_strings_counts_as_none(value: object) -> None:
    groups = extract_groups({"groups": value}, "groups", max_groups=100)
    assert groups.values == ()
    assert groups.present


def test_a_list_at_the_cap_may_have_been_truncated() -> None:
    at_cap = extract_groups({"groups": [f"g{i}" for i in range(100)]}, "groups", max_groups=100)
    assert not at_cap.complete
    below = extract_groups({"groups": [f"g{i}" for i in range(99)]}, "groups", max_groups=100)
    assert below.complete


@pytest.mark.parametrize(
    "marker",
    [
        {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "x"}}},
        {"hasgroups": True},
        {"hasgroups": "true"},
        {"_claim_names": {"groups": "src1"}, "groups": ["a"]},
    ],
)
def test_entra_overage_markers_make_the_list_incomplete(marker: dict[str, Any]) -> None:
    groups = extract_groups(marker, "groups", max_groups=100)
    assert not groups.complete
    assert groups.values == ()


def idp(name: str, *domains: str) -> IdpConnection:
    return IdpConnection(
        id=len(name), name=name, issuer="https://x", client_id="c", allowed_domains=list(domains)
    )


def test_the_only_idp_is_chosen_whatever_the_hint() -> None:
    only = idp("corp", "corp.example")
    assert pick_idp([only], "x@else.example") == (only, [only])


def test_the_hint_domain_chooses_among_several_idps() -> None:
    corp, other = idp("corp", "corp.example"), idp("other", "other.example")
    assert pick_idp([corp, other], "x@OTHER.example")[0] is other
    assert pick_idp([corp, other], "x@corp.example")[0] is corp
    assert pick_idp([corp, other], "x@nowhere.example") == (None, [corp, other])
    assert pick_idp([corp, other], "x@corp.example@other.example") == (None, [corp, other])
    assert pick_idp([corp, other], None) == (None, [corp, other])
