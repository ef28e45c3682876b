"""Fixtures for idp-dev's own tests: a live provider on loopback per test, and HTTP clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx2
import pytest
from idp_dev import Client, IdpConfig, IdpHandle, run_idp
from idp_dev.testing import RelyingParty

REDIRECT = "http://127.0.0.1:8765/auth/callback"
PUBLIC_REDIRECT = "http://127.0.0.1:7777/cb"


def config(**overrides: object) -> IdpConfig:
    """The demo users and client, plus a public client and one that asks for consent."""
    demo = IdpConfig.demo(**overrides)  # type: ignore[arg-type]
    extra = (
        Client(client_id="cli", redirect_uris=(PUBLIC_REDIRECT,)),
        Client(
            client_id="consenting",
            client_secret="consent-secret",
            redirect_uris=(REDIRECT,),
            require_consent=True,
        ),
    )
    return IdpConfig(
        **{**demo.__dict__, "clients": demo.clients + extra},
    )


@pytest.fixture(scope="module")
def shared_idp() -> Iterator[IdpHandle]:
    with run_idp(config()) as handle:
        yield handle


@pytest.fixture
def idp(shared_idp: IdpHandle) -> Iterator[IdpHandle]:
    """One provider per module, restored to its start-up state after every test."""
    yield shared_idp
    shared_idp.restore()


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(follow_redirects=False, timeout=10.0) as client:
        yield client


@pytest.fixture
def rp(idp: IdpHandle, http: httpx2.Client) -> RelyingParty:
    return RelyingParty(http, idp.issuer, redirect_uri=REDIRECT)


@pytest.fixture
def start_idp() -> Iterator[Callable[..., IdpHandle]]:
    """Start a provider with settings other than the default; stopped after the test."""
    with ExitStack() as stack:

        def start(**overrides: object) -> IdpHandle:
            return stack.enter_context(run_idp(config(**overrides)))

        yield start
