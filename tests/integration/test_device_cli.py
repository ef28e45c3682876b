"""`gatepass login` (the CLI client of the device flow) against a real Gatepass and idp-dev:
sign-in with approval in a browser, the cached token, refresh, and the fallback to a new
device flow when the refresh is refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

from gatepass.cli.login import obtain_token
from tests.conftest import SignIn
from tests.integration.test_device_support import Browser, stream_message

WAIT = 30.0  # seconds any one step may take before the test fails


@dataclass
class Watched:
    """An HTTP client for `obtain_token` that reports what it sent and the codes it got."""

    http: httpx2.Client = field(init=False)
    sent: list[tuple[str, str]] = field(default_factory=list)  # (path, grant_type or "")
    user_codes: list[str] = field(default_factory=list)
    code_shown: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.http = httpx2.Client(
            timeout=30,
            follow_redirects=False,
            event_hooks={"request": [self._request], "response": [self._response]},
        )

    def _request(self, request: httpx2.Request) -> None:
        grant_type = ""
        if request.method == "POST":
            body = dict(httpx2.QueryParams(request.content.decode()))
            grant_type = body.get("grant_type", "")
        self.sent.append((request.url.path, grant_type))

    def _response(self, response: httpx2.Response) -> None:
        if response.request.url.path.endswith("/device_authorization"):
            response.read()
            self.user_codes.append(response.json()["user_code"])
            self.code_shown.set()

    def next_code(self) -> str:
        assert self.code_shown.wait(WAIT), "gatepass login asked for no device code"
        self.code_shown.clear()
        return self.user_codes[-1]


@pytest.fixture
def signin_fast(make_signin: Callable[..., SignIn]) -> SignIn:
    """Gatepass with a 1 s poll interval (the CLI sleeps the interval between polls)."""
    return make_signin(sign_in={"device_poll_interval": 1})


@pytest.fixture
def watched() -> Iterator[Watched]:
    made = Watched()
    yield made
    made.http.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def login_in_background(
    pool: ThreadPoolExecutor, base: str, cache: Path, watched: Watched
) -> Future[str]:
    return pool.submit(obtain_token, base, cache, http=watched.http)


def approve(signin: SignIn, user_code: str) -> None:
    with httpx2.Client(follow_redirects=False, timeout=15) as http:
        Browser(signin.issuer, http).approve_code(user_code)


def age_cache(cache: Path, base: str, **changes: object) -> None:
    """Make the cached entry look older (or otherwise different) than it is."""
    entries = json.loads(cache.read_text())
    entries[base].update(changes)
    cache.write_text(json.dumps(entries))


def test_gatepass_login_signs_in_reuses_refreshes_and_falls_back_to_the_device_flow(
    signin_fast: SignIn, watched: Watched, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    signin = signin_fast
    base = signin.gatepass.base
    cache = tmp_path / "credentials.json"

    # first run: the device flow, approved in the browser
    running = login_in_background(pool, base, cache, watched)
    approve(signin, watched.next_code())
    token = running.result(WAIT)
    assert stream_message(signin, token).status_code == 200
    assert signin.gatepass.wait_for_logs(1)[-1].user_email == "alice@corp.example"
    assert cache.stat().st_mode & 0o077 == 0  # only the user can read it
    assert ("/anthropic/.well-known/oauth-authorization-server", "") in watched.sent

    # second run: the cached token, without a single request
    before = len(watched.sent)
    assert obtain_token(base, cache, http=watched.http) == token
    assert len(watched.sent) == before

    # a stale token is refreshed (no browser)
    age_cache(cache, base, obtained_at=0)
    refreshed = obtain_token(base, cache, http=watched.http)
    assert refreshed != token
    assert watched.sent[-1] == ("/oauth/token", "refresh_token")
    assert stream_message(signin, refreshed).status_code == 200

    # a refused refresh (here: a refresh token already spent) falls back to the device flow
    age_cache(cache, base, obtained_at=0, refresh_token="spent-or-unknown")
    running = login_in_background(pool, base, cache, watched)
    approve(signin, watched.next_code())
    again = running.result(WAIT)
    assert again not in (token, refreshed)
    assert stream_message(signin, again).status_code == 200
