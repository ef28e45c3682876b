"""Gatepass as a resource server: Bearer tokens that the corporate IdP (idp-dev) issued itself.

Claude Desktop pointed at the corporate IdP directly signs in there with its own client id
and sends the IdP's id_token (aud = that client id) or access token (aud = the configured
API audience, idp-dev's `access_token_audience`) to `/anthropic/v1/messages`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from idp_dev import Client
from idp_dev import User as IdpUser
from idp_dev import testing as idp_testing
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.manage import identity as identity_ops
from gatepass.store import identity_queries
from gatepass.store.identity import User
from tests.conftest import IDP_CLIENT_SECRET, IDP_NAME, SignIn

DESKTOP_AT_IDP = "claude-desktop-at-corp"  # the desktop app's own client id at the IdP
API_AUDIENCE = "gatepass"  # idp-dev's default `access_token_audience`
AUDIENCES = [DESKTOP_AT_IDP, API_AUDIENCE]
BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "Hello"}],
}
KINDS = ("id_token", "access_token")


@dataclass
class Fetches:
    """Every discovery and JWKS request the running Gatepass makes to the IdP."""

    urls: list[str] = field(default_factory=list)

    def jwks(self) -> int:
        return sum(1 for url in self.urls if url.endswith("/jwks"))


@dataclass
class Corp:
    signin: SignIn
    fetches: Fetches

    @property
    def harness(self) -> Any:
        return self.signin.gatepass

    def configure(self, audiences: list[str], *, require_verified_email: bool = False) -> None:
        """Set the connection's audiences (as `gatepass idps add --audience` does). idp-dev's
        access tokens carry `email` but no `email_verified`, like most IdPs' access tokens,
        so the connection must not require verification for them to map by email."""
        issuer = self.signin.idp.issuer
        keyring = self.harness.keyring

        async def save(session: AsyncSession) -> None:
            await identity_ops.add_idp(
                session,
                keyring,
                name=IDP_NAME,
                issuer=issuer,
                client_id="gatepass",
                client_secret=IDP_CLIENT_SECRET,
                scopes="openid profile email groups offline_access",
                allowed_domains=["corp.example"],
                require_verified_email=require_verified_email,
                audiences=audiences,
            )

        self.harness.store(save)
        self.harness.gateway.tokens.invalidate()  # what the change epoch does within a second

    def tokens(self, login: str = "alice@corp.example", password: str = "alice-password") -> Any:
        """Sign in at the IdP as the desktop app would; the IdP's token response."""
        with httpx2.Client(follow_redirects=False, timeout=30) as http:
            client = idp_testing.RelyingParty(
                http,
                self.signin.idp.issuer,
                client_id=DESKTOP_AT_IDP,
                client_secret=None,
                redirect_uri="http://127.0.0.1:8765/callback",
            )
            return client.login(login, password)

    def call(self, token: str) -> httpx2.Response:
        return httpx2.post(
            self.harness.base + "/v1/messages",
            headers={"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"},
            json=BODY,
            timeout=30,
        )

    def check_epoch(self) -> None:
        gateway = self.harness.gateway
        assert gateway.loop is not None
        asyncio.run_coroutine_threadsafe(gateway.check_change_epoch(), gateway.loop).result(5)


def refused(response: httpx2.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["x-should-retry"] == "false"
    message: str = response.json()["error"]["message"]
    return message


@pytest.fixture
def corp(make_signin: Callable[..., SignIn]) -> Corp:
    signin = make_signin()
    signin.idp.add_client(
        Client(
            client_id=DESKTOP_AT_IDP,
            redirect_uris=("http://127.0.0.1/callback",),
            loopback_any_port=True,
        )
    )
    fetches = Fetches()
    http = signin.gatepass.gateway.sso.http
    inner = http.get_json

    async def recording(url: str, **kwargs: Any) -> dict[str, Any]:
        fetches.urls.append(url)
        result: dict[str, Any] = await inner(url, **kwargs)
        return result

    http.get_json = recording
    corp = Corp(signin, fetches)
    corp.configure(AUDIENCES)
    return corp


@pytest.mark.parametrize("kind", KINDS)
def test_a_token_the_idp_issued_is_accepted_and_logged_with_the_mapped_key(
    corp: Corp, kind: str
) -> None:
    token = corp.tokens()[kind]
    response = corp.call(token)
    assert response.status_code == 200, response.text
    (row,) = corp.harness.wait_for_logs(1)
    assert row.user_email == "alice@corp.example"
    assert row.key_name == "eng-key"  # alice is in engineering
    assert row.status == 200


def test_the_mapped_key_limits_what_the_token_may_do(corp: Corp) -> None:
    token = corp.tokens("bob@corp.example", "bob-password")["id_token"]
    assert corp.call(token).status_code == 200  # sales-key allows haiku
    response = httpx2.post(
        corp.harness.base + "/v1/messages",
        headers={"authorization": f"Bearer {token}"},
        json={**BODY, "model": "claude-sonnet-4-6"},
    )
    assert response.status_code == 400  # not on sales-key's model list
    rows = corp.harness.wait_for_logs(1)
    assert {row.key_name for row in rows} == {"sales-key"}


def test_no_network_on_the_hot_path_once_keys_are_cached(corp: Corp) -> None:
    first = corp.tokens()
    assert corp.call(first["id_token"]).status_code == 200
    fetched = len(corp.fetches.urls)
    assert fetched == 2  # discovery and JWKS, once
    for _ in range(3):
        tokens = corp.tokens()  # new tokens, same keys
        assert corp.call(tokens["id_token"]).status_code == 200
        assert corp.call(tokens["access_token"]).status_code == 200
    assert len(corp.fetches.urls) == fetched


DEFECTS: list[dict[str, Any]] = [
    {"wrong_aud": True},
    {"wrong_iss": True},
    {"expired": True},
    {"future_iat": True},
    {"bad_signature": True},
    {"unknown_kid": True},
    {"alg_none": True},
    {"hs256_public_key": True},
    {"no_kid": True},
]


@pytest.mark.parametrize("switch", DEFECTS, ids=[next(iter(d)) for d in DEFECTS])
def test_every_misbehaviour_is_refused(corp: Corp, switch: dict[str, Any]) -> None:
    corp.signin.idp.set(apply_to_access_tokens=True, **switch)
    tokens = corp.tokens()
    corp.signin.idp.reset()
    for kind in KINDS:
        refused(corp.call(tokens[kind]))
    good = corp.tokens()  # the same person with honest tokens gets in
    assert corp.call(good["access_token"]).status_code == 200


def test_an_audience_that_is_not_configured_is_refused(corp: Corp) -> None:
    tokens = corp.tokens()
    corp.configure([DESKTOP_AT_IDP])  # id_tokens only
    assert corp.call(tokens["id_token"]).status_code == 200
    refused(corp.call(tokens["access_token"]))
    corp.configure([API_AUDIENCE])  # access tokens only
    refused(corp.call(tokens["id_token"]))
    assert corp.call(tokens["access_token"]).status_code == 200


def test_an_idp_without_audiences_accepts_none_of_its_tokens(corp: Corp) -> None:
    corp.configure([])
    tokens = corp.tokens()
    for kind in KINDS:
        refused(corp.call(tokens[kind]))
    assert corp.fetches.urls == []  # not even a discovery request


def test_an_issuer_nobody_configured_is_refused_without_asking_anyone(corp: Corp) -> None:
    tokens = corp.tokens()
    corp.signin.idp.set(wrong_iss=True, apply_to_access_tokens=True)
    forged = corp.tokens()
    for kind in KINDS:
        refused(corp.call(forged[kind]))
    assert corp.fetches.urls == []
    refused(corp.call("eyJhbGciOiJub25lIn0.bm90IGpzb24.x"))  # no readable iss at all
    corp.signin.idp.reset()
    assert corp.call(tokens["id_token"]).status_code == 200


def test_unmapped_people_are_refused(corp: Corp) -> None:
    corp.signin.idp.add_user(IdpUser(email="carol@corp.example", password="pw", groups=("ops",)))
    tokens = corp.tokens("carol@corp.example", "pw")
    for kind in KINDS:
        refused(corp.call(tokens[kind]))


def test_emails_outside_the_allowed_domains_are_refused(corp: Corp) -> None:
    corp.signin.idp.add_user(
        IdpUser(email="eve@corp.example.evil.com", password="pw", groups=("engineering",))
    )
    tokens = corp.tokens("eve@corp.example.evil.com", "pw")
    for kind in KINDS:
        refused(corp.call(tokens[kind]))


def test_an_access_token_without_email_verified_needs_the_connection_to_allow_it(
    corp: Corp,
) -> None:
    """Access tokens rarely say whether the email is verified; a connection that requires
    verification refuses them, like it refuses such sign-ins."""
    corp.configure(AUDIENCES, require_verified_email=True)
    tokens = corp.tokens()
    payload = tokens["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert "email" in claims
    assert "email_verified" not in claims
    assert corp.call(tokens["id_token"]).status_code == 200  # says email_verified: true
    refused(corp.call(tokens["access_token"]))
    corp.configure(AUDIENCES, require_verified_email=False)
    assert corp.call(tokens["access_token"]).status_code == 200


def _known_user(corp: Corp, *, subject: str, email: str, disabled: bool) -> None:
    issuer = corp.signin.idp.issuer

    async def add(session: AsyncSession) -> None:
        idp = await identity_queries.get_idp(session, name=IDP_NAME)
        assert idp is not None
        assert idp.id is not None
        session.add(
            User(
                public_id=secrets.token_urlsafe(16),
                idp_id=idp.id,
                issuer=issuer,
                subject=subject,
                email=email,
                disabled=disabled,
            )
        )

    corp.harness.store(add)


def test_a_disabled_user_is_refused_once_the_change_reaches_the_gateway(corp: Corp) -> None:
    _known_user(corp, subject="alice", email="alice@corp.example", disabled=False)
    tokens = corp.tokens()
    assert corp.call(tokens["id_token"]).status_code == 200
    corp.harness.store(
        lambda s: identity_ops.set_user_disabled(s, email="alice@corp.example", disabled=True)
    )  # as the CLI does, elsewhere: only the change epoch tells this process
    corp.check_epoch()
    for kind in KINDS:
        assert "disabled" in refused(corp.call(tokens[kind]))
    fresh = corp.tokens()
    assert "disabled" in refused(corp.call(fresh["access_token"]))


def test_a_disabled_user_row_matched_by_email_is_refused_too(corp: Corp) -> None:
    """E.g. Entra's per-application `sub`: the row from a broker sign-in has another one."""
    _known_user(
        corp, subject="alice-as-seen-by-gatepass", email="alice@corp.example", disabled=True
    )
    tokens = corp.tokens()
    for kind in KINDS:
        assert "disabled" in refused(corp.call(tokens[kind]))


def test_a_revoked_key_stops_the_tokens_at_once(corp: Corp) -> None:
    tokens = corp.tokens()
    assert corp.call(tokens["id_token"]).status_code == 200
    corp.harness.revoke_key("eng-key")
    refused(corp.call(tokens["id_token"]))


def _add_wide_mapping(corp: Corp) -> None:
    """A group that only shows up in a cut-short list, mapped to a wider key at a lower
    priority than engineering's: a partial list must not select it."""
    corp.harness.create_key("wide-key", models="*")

    async def add(session: AsyncSession) -> None:
        await identity_ops.add_mapping(
            session, idp=IDP_NAME, group="filler-001", key="wide-key", priority=30
        )

    corp.harness.store(add)
    corp.harness.gateway.tokens.invalidate()


@pytest.mark.parametrize("switch", ["groups_truncated", "groups_overage"])
def test_cut_short_group_lists_cannot_widen_access(corp: Corp, switch: str) -> None:
    _add_wide_mapping(corp)
    corp.signin.idp.set(**{switch: True})
    tokens = corp.tokens()
    for kind in KINDS:
        refused(corp.call(tokens[kind]))  # group mappings are not used at all

    async def by_email(session: AsyncSession) -> None:
        await identity_ops.add_mapping(
            session, idp=IDP_NAME, email="alice@corp.example", key="sales-key", priority=40
        )

    corp.harness.store(by_email)
    corp.harness.gateway.tokens.invalidate()
    assert corp.call(tokens["id_token"]).status_code == 200  # email mappings still apply
    (row,) = corp.harness.wait_for_logs(1)
    assert row.key_name == "sales-key"


def test_unknown_kids_refetch_the_jwks_at_most_once_per_interval(corp: Corp) -> None:
    good = corp.tokens()
    assert corp.call(good["id_token"]).status_code == 200
    assert corp.fetches.jwks() == 1
    corp.signin.idp.set(unknown_kid=True, apply_to_access_tokens=True)
    bad = corp.tokens()
    corp.signin.idp.reset()
    for _ in range(10):
        for kind in KINDS:
            refused(corp.call(bad[kind]))
    assert corp.fetches.jwks() == 2  # one refetch for twenty forged kids
    assert corp.call(good["access_token"]).status_code == 200


def test_a_rotated_key_is_picked_up_with_one_refetch(corp: Corp) -> None:
    before = corp.tokens()
    assert corp.call(before["id_token"]).status_code == 200
    assert corp.fetches.jwks() == 1
    corp.signin.idp.rotate_keys()
    after = corp.tokens()
    assert corp.call(after["id_token"]).status_code == 200
    assert corp.call(after["access_token"]).status_code == 200
    assert corp.fetches.jwks() == 2
    assert corp.call(before["access_token"]).status_code == 200  # old key still published


def test_a_token_claiming_gatepass_as_issuer_is_checked_only_by_gatepass(corp: Corp) -> None:
    """The unverified `iss` only picks the verifier: relabelled, the IdP's token is refused."""
    tokens = corp.tokens()
    header, payload, signature = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["iss"] = corp.harness.settings.issuer
    relabelled = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(corp.call(f"{header}.{relabelled}.{signature}"))
    assert corp.fetches.urls == []
